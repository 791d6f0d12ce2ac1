"""Backend-agnostic task API and the contracts every backend implements: scenes, goal predicates,
tasks, the robot/action contract (:mod:`.robot`), the observation layouts (:mod:`.observation`)
and the Gymnasium surface (:mod:`.surface`)."""
from envs.core.observation import (CAMERAS, IMAGE_OBS_MODES, MAX_OBJECTS, OBS_MODES, POINTCLOUD_POINTS,
                                   SlotCapacityError, slots_layout, split_slots, state_layout)
from envs.core.fixture_goals import Closed, Covered, InContainer, Opened
from envs.core.orientation import yaw_of, yaw_period
from envs.core.predicates import Aligned, AtPose, Bridge, Goal, Inserted, InZone, Near, On, Pushed, Reached
from envs.core.robot import CONTROL_HZ, CONTROL_MODES
from envs.core.rotations import yaw_quat
from envs.core.scene import COLORS, OBJECT_KINDS, REGIONS, ObjectSpec, Scene, SceneError
from envs.core.state import ObjectState, SceneState
from envs.core.surface import SIMS
from envs.core.task import Task, build_layout

__all__ = ["Closed", "Covered", "InContainer", "Opened", "Aligned", "Inserted", "yaw_of", "yaw_period", "AtPose", "Bridge", "Goal", "Reached", "InZone", "Near", "On", "Pushed", "CAMERAS", "COLORS",
           "CONTROL_HZ", "CONTROL_MODES", "IMAGE_OBS_MODES", "MAX_OBJECTS", "OBJECT_KINDS", "OBS_MODES",
           "POINTCLOUD_POINTS", "REGIONS", "SIMS", "ObjectSpec", "Scene", "SceneError", "ObjectState", "SceneState",
           "SlotCapacityError", "Task", "build_layout", "slots_layout", "split_slots", "state_layout", "yaw_quat"]
