"""Backend-agnostic task API: scenes, goal predicates, tasks."""
from envs.core.predicates import AtPose, Bridge, Goal, InZone, Near, On, Pushed, Reached
from envs.core.scene import COLORS, REGIONS, ObjectSpec, Scene, SceneError
from envs.core.state import ObjectState, SceneState
from envs.core.task import Task, build_layout

__all__ = ["AtPose", "Bridge", "Goal", "Reached", "InZone", "Near", "On", "Pushed", "COLORS", "REGIONS", "ObjectSpec",
           "Scene", "SceneError", "ObjectState", "SceneState", "Task", "build_layout"]
