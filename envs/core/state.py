"""Backend-agnostic snapshot of the world that goals and rewards are computed from."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ObjectState:
    pos: np.ndarray      # (3,) centre of the object, world frame, m
    quat: np.ndarray     # (4,) orientation, wxyz
    linvel: np.ndarray   # (3,) m/s
    angvel: np.ndarray   # (3,) rad/s


@dataclass
class SceneState:
    objects: dict[str, ObjectState]
    tcp_pos: np.ndarray          # (3,) tool centre point (between the fingertips), m
    tcp_quat: np.ndarray         # (4,) wxyz
    gripper_width: float         # distance between the finger pads, m
    touching: frozenset[str] = field(default_factory=frozenset)  # objects a finger touches
    grasped: frozenset[str] = field(default_factory=frozenset)   # objects both fingers touch
    # articulated fixtures (envs.core.fixtures.JOINT_KINDS): joint position, m (prismatic) or rad
    joints: dict[str, float] = field(default_factory=dict)

    def pos(self, obj) -> np.ndarray:
        return self.objects[obj.name].pos
