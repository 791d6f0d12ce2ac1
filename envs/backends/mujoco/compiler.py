"""Compile a backend-agnostic :class:`~envs.core.scene.Scene` into an MJCF model.

The robot comes from ``assets/panda/panda.xml``; the table, lights and cameras are added here;
each scene object becomes a body (free-jointed if movable, static if a fixture).
"""
from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from functools import lru_cache

import numpy as np

from envs.core import fixtures as fx
from envs.core.fixtures import FIXTURE_KINDS
from envs.core.observation import FRONT_CAMERA
from envs.core.robot import CONTROL_HZ, PANDA_XML
from envs.core.rotations import yaw_quat
from envs.core.scene import BOWL_WALLS, Scene
from envs.core.sockets import socket_boxes
from envs.core.surface import RENDER_CAMERA, RENDER_CAMERA_NAME

TIMESTEP = 0.002      # s: physics step
N_SUBSTEPS = round(1.0 / (CONTROL_HZ * TIMESTEP))


@lru_cache(maxsize=1)
def _robot_tree() -> ET.Element:
    if not PANDA_XML.exists():
        raise FileNotFoundError(f"robot model not found at {PANDA_XML}; set ROBOFORGE_ASSETS to the "
                                f"folder holding panda/panda.xml")
    return ET.parse(PANDA_XML).getroot()


def lookat_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF ``xyaxes`` for a camera at ``pos`` looking at ``target`` (cameras look along -z)."""
    z = np.asarray(pos, float) - np.asarray(target, float)
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return " ".join(f"{v:.5f}" for v in (*x, *y))


def _fmt(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.atleast_1d(v))


def _add_object(world: ET.Element, obj) -> None:
    hx, hy, hz = obj.half_size
    rgba = _fmt(obj.rgba)
    body = ET.SubElement(world, "body", name=obj.name, pos=_fmt(obj.pos), quat=_fmt(obj.quat))
    if obj.kind in ("block", "cylinder"):
        ET.SubElement(body, "freejoint", name=f"{obj.name}_joint")
        geom = dict(name=obj.name, rgba=rgba, mass=f"{obj.mass:.6g}", friction="1 0.005 0.0001",
                    condim="4", solref="0.005 1")
        if obj.kind == "block":
            ET.SubElement(body, "geom", type="box", size=_fmt((hx, hy, hz)), **geom)
        else:
            ET.SubElement(body, "geom", type="cylinder", size=_fmt((hx, hz)), **geom)
    elif obj.kind == "zone":
        ET.SubElement(body, "geom", name=obj.name, type="box", size=_fmt((hx, hy, hz)),
                      rgba=_fmt((*obj.rgba[:3], 0.7)), contype="0", conaffinity="0")
    elif obj.kind == "marker":
        ET.SubElement(body, "geom", name=obj.name, type="sphere", size=_fmt(hx), rgba=_fmt((*obj.rgba[:3], 0.7)),
                      contype="0", conaffinity="0")
    elif obj.kind == "bowl":
        t = 0.005  # wall / floor thickness
        ET.SubElement(body, "geom", name=f"{obj.name}_floor", type="cylinder", size=_fmt((hx, t / 2)),
                      pos=_fmt((0, 0, -hz + t / 2)), rgba=rgba)
        seg = np.pi * hx / BOWL_WALLS * 1.05
        for i in range(BOWL_WALLS):
            a = 2 * np.pi * i / BOWL_WALLS
            ET.SubElement(body, "geom", name=f"{obj.name}_wall{i}", type="box", size=_fmt((t / 2, seg, hz)),
                          pos=_fmt((hx * np.cos(a), hx * np.sin(a), 0)), quat=_fmt(yaw_quat(a)), rgba=rgba)
    elif obj.kind == "socket":
        for i, (c, h, a) in enumerate(socket_boxes(obj)):
            ET.SubElement(body, "geom", name=f"{obj.name}_wall{i}", type="box", size=_fmt(h), pos=_fmt(c),
                          quat=_fmt(yaw_quat(a)), rgba=rgba, friction="1 0.005 0.0001")
    elif obj.kind in FIXTURE_KINDS:
        _add_fixture(body, obj)
    else:
        raise ValueError(f"the MuJoCo backend has no object kind {obj.kind!r}")


# Collision bits of an articulated fixture: its base and its moving part do not collide with each
# other (the joint's limits keep them apart) but each collides with everything else (bit 1).
_BASE_BITS, _MOVING_BITS = dict(contype="2", conaffinity="1"), dict(contype="4", conaffinity="1")


def _add_fixture(body: ET.Element, obj) -> None:
    """A box, lid, drawer or door from :func:`envs.core.fixtures.parts`: box geoms on the object's
    body; the moving part of a drawer (door) on a child body with a slide (hinge) joint named
    :func:`envs.core.fixtures.joint_name`."""
    rgba = _fmt(obj.rgba)
    contact = dict(friction="1 0.005 0.0001", condim="4", solref="0.005 1")
    parts = fx.parts(obj)
    if obj.kind == "lid":
        ET.SubElement(body, "freejoint", name=f"{obj.name}_joint")
        volume = sum(8 * np.prod(p.half) for p in parts)
        for p in parts:
            ET.SubElement(body, "geom", name=f"{obj.name}_{p.name}", type="box", size=_fmt(p.half), pos=_fmt(p.center),
                          rgba=rgba, mass=f"{obj.mass * 8 * np.prod(p.half) / volume:.6g}", **contact)
        return
    base_bits = _BASE_BITS if obj.kind in fx.JOINT_KINDS else {}
    for p in parts:
        if p.body == "base":
            ET.SubElement(body, "geom", name=f"{obj.name}_{p.name}", type="box", size=_fmt(p.half), pos=_fmt(p.center),
                          rgba=rgba, **contact, **base_bits)
    if obj.kind not in fx.JOINT_KINDS:
        return
    j = fx.joint_spec(obj)
    moving = ET.SubElement(body, "body", name=f"{obj.name}_moving")
    if j.type == "revolute":  # armature: the drawer's 0.01 kg felt at the handle's ~0.15 m lever
        ET.SubElement(moving, "joint", name=fx.joint_name(obj), type="hinge", pos=_fmt(j.pivot), axis=_fmt(j.axis),
                      range=_fmt((j.low, j.high)), damping=f"{j.damping:.6g}", frictionloss=f"{j.friction:.6g}",
                      armature="0.0002", limited="true")
    else:
        ET.SubElement(moving, "joint", name=fx.joint_name(obj), type="slide", axis=_fmt(j.axis),
                      range=_fmt((j.low, j.high)), damping=f"{j.damping:.6g}", frictionloss=f"{j.friction:.6g}",
                      armature="0.01", limited="true")
    mparts = [p for p in parts if p.body == "moving"]
    volume = sum(8 * np.prod(p.half) for p in mparts)
    for p in mparts:
        ET.SubElement(moving, "geom", name=f"{obj.name}_{p.name}", type="box", size=_fmt(p.half), pos=_fmt(p.center),
                      rgba=rgba,
                      mass=f"{j.mass * 8 * np.prod(p.half) / volume:.6g}", **contact, **_MOVING_BITS)



def compile_scene(scene: Scene, model_name: str = "roboforge") -> str:
    """Return MJCF XML text for ``scene`` with the Panda, a table, lights and cameras."""
    robot = _robot_tree()
    root = ET.Element("mujoco", model=model_name)
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    ET.SubElement(root, "option", timestep=str(TIMESTEP), integrator="implicitfast",
                  cone="elliptic", impratio="10")
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "global", offwidth="640", offheight="640")
    ET.SubElement(visual, "quality", shadowsize="2048")
    ET.SubElement(visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.5 0.5 0.5")
    for tag in ("default",):
        root.append(copy.deepcopy(robot.find(tag)))
    asset = ET.SubElement(root, "asset")
    ET.SubElement(asset, "texture", name="grid", type="2d", builtin="checker", rgb1="0.32 0.34 0.36",
                  rgb2="0.28 0.3 0.32", width="256", height="256")
    ET.SubElement(asset, "material", name="floor", texture="grid", texrepeat="8 8")
    ET.SubElement(asset, "material", name="table", rgba="0.76 0.66 0.52 1")

    world = ET.SubElement(root, "worldbody")
    ET.SubElement(world, "light", pos="0.6 -0.4 1.6", dir="0 0.25 -1", diffuse="0.55 0.55 0.55", castshadow="true")
    ET.SubElement(world, "light", pos="1.5 0.5 1.2", dir="-1 -0.3 -0.8", diffuse="0.3 0.3 0.3", castshadow="false")
    ET.SubElement(world, "geom", name="floor", type="plane", size="3 3 0.1", pos="0 0 -0.75", material="floor")
    ET.SubElement(world, "geom", name="table", type="box", size="0.55 0.7 0.375", pos="0.4 0 -0.375",
                  material="table", friction="1 0.005 0.0001")
    eye, target, fovy = FRONT_CAMERA
    ET.SubElement(world, "camera", name="front", pos=_fmt(eye), xyaxes=lookat_xyaxes(eye, target), fovy=_fmt(fovy))
    eye, target, fovy = RENDER_CAMERA
    ET.SubElement(world, "camera", name=RENDER_CAMERA_NAME, pos=_fmt(eye), xyaxes=lookat_xyaxes(eye, target),
                  fovy=_fmt(fovy))
    ET.SubElement(world, "camera", name="side", pos="0.5 -0.9 0.5",
                  xyaxes=lookat_xyaxes((0.5, -0.9, 0.5), (0.5, 0, 0.05)), fovy="45")
    for child in robot.find("worldbody"):
        world.append(copy.deepcopy(child))
    for obj in scene.objects:
        _add_object(world, obj)
    for tag in ("contact", "tendon", "equality", "actuator"):
        section = robot.find(tag)
        if section is not None:
            root.append(copy.deepcopy(section))
    return ET.tostring(root, encoding="unicode")

