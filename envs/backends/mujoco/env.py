"""Gymnasium environment running a roboforge task on MuJoCo.

Observations follow :mod:`envs.core.observation` (the ``state`` vector; the task-independent
``slots`` vector; images from the front and wrist cameras; a point cloud unprojected from their
depth, table-top region only, a fixed N points); actions follow :mod:`envs.core.robot`. ``info``
carries ``success``, ``task`` (the registered name), ``instruction`` and the named
``conditions`` every step. ``terminated`` = success.

The observation cameras render plain (:data:`OBSERVATION_RENDER`: no shadows, reflections,
skybox or multisampling); the overview camera of ``render()`` keeps the model's full look.
"""
from __future__ import annotations

import atexit
import os
import weakref

# MUJOCO_GL: its default is set once, in envs/__init__.py, which runs before this import
import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.backends.mujoco.compiler import N_SUBSTEPS, compile_scene
from envs.backends.mujoco.controller import ArmController
from envs.core import fixtures as fx
from envs.core import observation as ob
from envs.core.fixtures import JOINT_KINDS
from envs.core.predicates import goal_delta
from envs.core.robot import CONTROL_HZ, INIT_JOINT_NOISE, check_action_finite, home_qpos
from envs.core.state import ObjectState, SceneState
from envs.core.surface import (FEATURES, RENDER_CAMERA_NAME, RENDER_SIZE, check_features, check_modes,
                                check_render_size)
from envs.core.task import Task, build_layout


class SimulationUnstableError(RuntimeError):
    """MuJoCo found NaN, inf or huge values in the state, accelerations or controls during a step
    (it then resets the state on its own, so the episode goes on from a state nobody chose)."""


# MuJoCo's warnings that mean the simulated state is no longer physical
_UNSTABLE = tuple(int(w) for w in (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQPOS,
                                   mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADCTRL))
_last_mujoco_warning = {"text": ""}


def _keep_mujoco_warning(text: str) -> None:
    _last_mujoco_warning["text"] = text.strip()  # raised by the step that caused it, not printed


if mujoco.get_mju_user_warning() is None:  # never replace a handler someone else installed
    mujoco.set_mju_user_warning(_keep_mujoco_warning)


def _raise_if_unstable(data: mujoco.MjData, task: str) -> None:
    """Raise :class:`SimulationUnstableError` when one of MuJoCo's instability counters moved
    (they are cleared by ``mj_resetData``, which every reset runs)."""
    hits = [mujoco.mjtWarning(w).name.removeprefix("mjWARN_") for w in _UNSTABLE if data.warning[w].number]
    if hits:
        detail = _last_mujoco_warning["text"] or "no message"
        raise SimulationUnstableError(f"{task}: the MuJoCo simulation became unstable at t={data.time:.3f} s "
                                      f"({', '.join(hits)}: {detail}); reset the env before stepping again")



# How the observation cameras (front, wrist; rgb, depth, point cloud) render. On a CPU renderer
# (Mesa's llvmpipe behind EGL) the shadow pass is ~90% of a 64 px frame (bench/rendering.py), and
# a policy's 64 px input gains nothing from shadows, floor reflections, the skybox or 4x
# multisampled edges; the overview video camera keeps them. Part of the demo cache key
# (train.demos): changing it changes what image demos hold.
OBSERVATION_RENDER = {"shadows": False, "reflections": False, "skybox": False, "multisamples": 0}
_SCENE_FLAGS = {"shadows": mujoco.mjtRndFlag.mjRND_SHADOW, "reflections": mujoco.mjtRndFlag.mjRND_REFLECTION,
                "skybox": mujoco.mjtRndFlag.mjRND_SKYBOX}


class RenderError(RuntimeError):
    """No OpenGL context could be made for rendering."""


def _gl_help(err: Exception) -> RenderError:
    backend = os.environ.get("MUJOCO_GL", "")
    return RenderError(
        f"MuJoCo could not create an OpenGL context (MUJOCO_GL={backend!r}): {err}. "
        "Headless rendering needs EGL: run `apt-get install -y libegl1 libgl1` (as root) and keep "
        "MUJOCO_GL=egl, or install OSMesa (`apt-get install -y libosmesa6`) and set MUJOCO_GL=osmesa. "
        "State observations without rendering need neither.")


_LIVE_ENVS: "weakref.WeakSet[MujocoTaskEnv]" = weakref.WeakSet()
_EXIT_HOOK = []


def _close_all() -> None:
    # GL contexts must be freed before mujoco's own exit hook terminates the EGL display, or their
    # finalizers fail noisily. Registered after the first context exists, so it runs first (LIFO).
    for env in list(_LIVE_ENVS):
        env.close()


class MujocoTaskEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    observation_render = OBSERVATION_RENDER   # how the observation cameras draw (the demo cache key reads it)

    def __init__(self, task_cls: type[Task], obs_mode: str = "state", control_mode: str = "ee_delta_pose",
                 render_mode: str | None = None, image_size: int = 128,
                 render_size: int | tuple[int, int] = RENDER_SIZE, reward_mode: str = "dense", num_envs: int = 1):
        check_modes("MuJoCo", obs_mode, control_mode, render_mode, reward_mode)
        if num_envs != 1:
            raise ValueError("the MuJoCo env is single-instance; for batches use gymnasium.vector "
                             "(SyncVectorEnv/AsyncVectorEnv) over num_envs copies")
        check_features(task_cls, FEATURES, "MuJoCo")
        self.task_cls, self.obs_mode, self.control_mode = task_cls, obs_mode, control_mode
        self.render_mode, self.reward_mode = render_mode, reward_mode
        # render(): the overview camera at render_size = (width, height) pixels (an int: a square)
        self.image_size, self.render_size = image_size, check_render_size(render_size)
        self._signature = None
        self._renderers: dict[tuple[int, int, bool], mujoco.Renderer] = {}   # (width, height, observation)
        self._home = home_qpos()
        _LIVE_ENVS.add(self)
        self._build(np.random.default_rng(0))  # fixes spaces: a task's object structure is static
        self.action_space = spaces.Box(-1.0, 1.0, (self.controller.action_dim,), np.float32)
        self.observation_space = self._make_obs_space()

    # -- scene lifecycle -------------------------------------------------------------------
    def _build(self, rng: np.random.Generator) -> None:
        self.task, scene = build_layout(self.task_cls, rng)
        self.scene, self.goals = scene, self.task.goals()
        if self.obs_mode == "slots":  # colours and sizes may change per episode; the count is checked here
            self._slot_attrs = ob.slot_attributes(scene.objects, self.task_cls.name)
            index = {o.name: k for k, o in enumerate(scene.objects)}
            self._goal_objects = np.array([index[g.obj.name] for g in self.goals], dtype=np.int64)
        sig = scene.signature()
        if self._signature is not None and [s[:2] for s in sig] != [s[:2] for s in self._signature]:
            raise RuntimeError(f"task {self.task_cls.name!r} built a different set of objects for another "
                               f"seed; a task's objects (names and kinds) must not depend on the seed")
        if sig != self._signature:  # sizes/masses changed (or first build): recompile
            self.model = mujoco.MjModel.from_xml_string(compile_scene(scene, self.task_cls.name))
            self.data = mujoco.MjData(self.model)
            self.controller = ArmController(self.model, self.data, self.control_mode, self._home)
            self._index_model()
            self._close_renderers()
            self._signature = sig
        else:  # same structure: recolour and move in place, no recompile
            for obj in scene.objects:
                for g in self._obj_geoms[obj.name]:
                    self.model.geom_rgba[g] = obj.rgba if obj.kind not in ("zone", "marker") else (*obj.rgba[:3], 0.7)
        mujoco.mj_resetData(self.model, self.data)
        self._specs = {o.name: o for o in scene.objects}   # this episode's poses (the index keeps names)
        for obj in scene.objects:
            if obj.kind in JOINT_KINDS:
                self.data.qpos[self._joint_qpos[obj.name]] = obj.joint_pos
        for obj in scene.objects:
            quat = obj.quat
            if obj.movable:
                adr = self._obj_qpos[obj.name]
                self.data.qpos[adr:adr + 3], self.data.qpos[adr + 3:adr + 7] = obj.pos, quat
            else:
                b = self.model.body(obj.name).id
                self.model.body_pos[b], self.model.body_quat[b] = obj.pos, quat
        q = self._home.copy()
        q[:7] += rng.normal(0.0, INIT_JOINT_NOISE, 7)
        self.data.qpos[:9] = q
        mujoco.mj_forward(self.model, self.data)
        self.controller.reset()

    def _index_model(self) -> None:
        m = self.model
        self._movable = [o for o in self.scene.objects if o.movable]
        self._fixtures = [o for o in self.scene.objects if not o.movable]
        self._obj_qpos = {o.name: m.jnt_qposadr[m.joint(f"{o.name}_joint").id] for o in self._movable}
        self._obj_dof = {o.name: m.jnt_dofadr[m.joint(f"{o.name}_joint").id] for o in self._movable}
        self._obj_geoms = {o.name: [g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body(o.name).id]
                           for o in self.scene.objects}
        # articulated fixtures: the jointed part is a child body "<name>_moving" on fx.joint_name
        self._articulated = [o for o in self._fixtures if o.kind in JOINT_KINDS]
        self._joint_qpos = {o.name: m.jnt_qposadr[m.joint(fx.joint_name(o)).id] for o in self._articulated}
        self._joint_dof = {o.name: m.jnt_dofadr[m.joint(fx.joint_name(o)).id] for o in self._articulated}
        self._moving_body = {o.name: m.body(f"{o.name}_moving").id for o in self._articulated}
        for o in self._articulated:
            self._obj_geoms[o.name] += [g for g in range(m.ngeom) if m.geom_bodyid[g] == self._moving_body[o.name]]
        self._touchable = self._movable + self._articulated   # what a finger can touch and grasp
        self._geom_owner = np.full(m.ngeom, -1)
        for i, o in enumerate(self._movable):
            self._geom_owner[self._obj_geoms[o.name]] = i
        for i, o in enumerate(self._articulated, start=len(self._movable)):  # the moving part only
            self._geom_owner[[g for g in self._obj_geoms[o.name] if m.geom_bodyid[g] == self._moving_body[o.name]]] = i
        self._pads = (m.geom("left_pad").id, m.geom("right_pad").id)

    # -- state -----------------------------------------------------------------------------
    def scene_state(self) -> SceneState:
        """Privileged, backend-agnostic snapshot (goals, rewards and oracles read this)."""
        d = self.data
        objects = {}
        for o in self._movable:
            a, v = self._obj_qpos[o.name], self._obj_dof[o.name]
            objects[o.name] = ObjectState(d.qpos[a:a + 3].copy(), d.qpos[a + 3:a + 7].copy(),
                                          d.qvel[v:v + 3].copy(), d.qvel[v + 3:v + 6].copy())
        zero = np.zeros(3)
        for o in self._fixtures:
            b = self.model.body(o.name).id
            objects[o.name] = ObjectState(d.xpos[b].copy(), d.xquat[b].copy(), zero, zero)
        joints = {}
        for o in self._articulated:  # reported at its handle (envs.core.fixtures)
            o = self._specs[o.name]
            q, v = float(d.qpos[self._joint_qpos[o.name]]), float(d.qvel[self._joint_dof[o.name]])
            objects[o.name] = ObjectState(fx.handle_point(o, q), d.xquat[self._moving_body[o.name]].copy(),
                                          fx.handle_velocity(o, q, v), zero)
            joints[o.name] = q
        touch_l, touch_r = self._finger_contacts()
        return SceneState(objects=objects, tcp_pos=d.site_xpos[self.controller.tcp].copy(),
                          tcp_quat=self.controller.tcp_quat(), gripper_width=float(d.qpos[7] + d.qpos[8]),
                          touching=frozenset(touch_l | touch_r), grasped=frozenset(touch_l & touch_r), joints=joints)

    def _finger_contacts(self) -> tuple[set[str], set[str]]:
        c = self.data.contact
        n = self.data.ncon
        if n == 0:
            return set(), set()
        g1, g2 = c.geom1[:n], c.geom2[:n]
        out = []
        for pad in self._pads:
            other = np.concatenate([g2[g1 == pad], g1[g2 == pad]])
            owners = self._geom_owner[other]
            out.append({self._touchable[i].name for i in owners[owners >= 0]})
        return out[0], out[1]

    def state_layout(self) -> dict[str, slice]:
        """Names of the slices of the ``state`` observation vector (:func:`envs.core.observation.state_layout`)."""
        return ob.state_layout([o.name for o in self._movable], [o.name for o in self._fixtures], len(self.goals))

    def _state_obs(self, s: SceneState) -> np.ndarray:
        d = self.data
        return ob.state_observation(
            d.qpos[:7], d.qvel[:7], np.array([s.gripper_width]), s.tcp_pos, s.tcp_quat,
            objects=[(s.objects[o.name].pos, s.objects[o.name].quat) for o in self._movable],
            fixtures=[s.objects[o.name].pos for o in self._fixtures],
            goal_deltas=[goal_delta(g, s) for g in self.goals])

    def _slots_obs(self, s: SceneState) -> np.ndarray:
        d, objs = self.data, [s.objects[o.name] for o in self.scene.objects]
        return ob.slots_observation(
            d.qpos[:7], d.qvel[:7], np.array([s.gripper_width]), s.tcp_pos, s.tcp_quat,
            pos=np.array([o.pos for o in objs]).reshape(-1, 3), quat=np.array([o.quat for o in objs]).reshape(-1, 4),
            attributes=self._slot_attrs, goal_objects=self._goal_objects,
            goal_deltas=np.array([goal_delta(g, s) for g in self.goals]).reshape(-1, 3))

    def _make_obs_space(self) -> spaces.Space:
        return ob.observation_space(self.obs_mode, ob.state_dim(self.state_layout()), self.image_size)

    def _obs(self, s: SceneState):
        if self.obs_mode == "slots":
            return self._slots_obs(s)
        state = self._state_obs(s)
        if self.obs_mode == "state":
            return state
        obs = {"state": state}
        if self.obs_mode in ("rgb", "rgbd"):
            for cam in ob.CAMERAS:
                obs[f"{cam}_rgb"] = self._render(cam, self.image_size)
                if self.obs_mode == "rgbd":
                    obs[f"{cam}_depth"] = self._render(cam, self.image_size, depth=True)[..., None]
        else:
            obs["pointcloud"] = self._pointcloud()
        return obs

    # -- rendering -------------------------------------------------------------------------
    def _renderer(self, width: int, height: int, observation: bool) -> mujoco.Renderer:
        """A renderer of this size; ``observation``: with :data:`OBSERVATION_RENDER`'s settings."""
        key = (width, height, observation)
        if key not in self._renderers:
            vis = self.model.vis  # a context's buffers are sized from these when it is made
            g = vis.global_
            g.offwidth, g.offheight = max(g.offwidth, width), max(g.offheight, height)
            samples = vis.quality.offsamples
            if observation:
                vis.quality.offsamples = OBSERVATION_RENDER["multisamples"]
            try:
                r = mujoco.Renderer(self.model, height, width)
            except Exception as err:  # mujoco raises plain Exceptions for GL failures
                raise _gl_help(err) from err
            finally:
                vis.quality.offsamples = samples
            if observation:
                for name, flag in _SCENE_FLAGS.items():
                    r.scene.flags[flag] = OBSERVATION_RENDER[name]
            self._renderers[key] = r
            if not _EXIT_HOOK:
                _EXIT_HOOK.append(atexit.register(_close_all))
        return self._renderers[key]

    def _render(self, camera: str, size: int | tuple[int, int], depth: bool = False,
                observation: bool = True) -> np.ndarray:
        r = self._renderer(*((size, size) if isinstance(size, int) else size), observation)
        if depth:
            r.enable_depth_rendering()
        r.update_scene(self.data, camera=camera)
        img = r.render()
        if depth:
            r.disable_depth_rendering()
            return img.astype(np.float32)
        return img

    def _pointcloud(self) -> np.ndarray:
        pts = []
        for cam in ob.CAMERAS:
            rgb = self._render(cam, self.image_size).reshape(-1, 3) / 255.0
            depth = self._render(cam, self.image_size, depth=True)
            pts.append(np.concatenate([self._unproject(cam, depth), rgb], axis=1))
        cloud = np.concatenate(pts).astype(np.float32)
        keep = cloud[(cloud[:, 2] > -0.01) & (np.abs(cloud[:, 1]) < 0.6) & (cloud[:, 0] < 1.0)]
        if len(keep) == 0:
            return np.zeros((ob.POINTCLOUD_POINTS, 6), np.float32)
        idx = np.linspace(0, len(keep) - 1, ob.POINTCLOUD_POINTS).astype(int)  # deterministic subsample
        return keep[idx]

    def _unproject(self, camera: str, depth: np.ndarray) -> np.ndarray:
        """Depth image (m) -> world-frame points using the camera's pose and vertical fov."""
        cam = self.model.camera(camera).id
        h, w = depth.shape
        f = 0.5 * h / np.tan(np.deg2rad(self.model.cam_fovy[cam]) / 2)
        u, v = np.meshgrid(np.arange(w) + 0.5 - w / 2, np.arange(h) + 0.5 - h / 2)
        # camera looks along -z, image v grows downward (-y)
        local = np.stack([u / f * depth, -v / f * depth, -depth], axis=-1).reshape(-1, 3)
        R = self.data.cam_xmat[cam].reshape(3, 3)
        return local @ R.T + self.data.cam_xpos[cam]

    def render(self):
        if self.render_mode != "rgb_array":
            raise ValueError("render() needs render_mode='rgb_array' at gym.make")
        return self._render(RENDER_CAMERA_NAME, self.render_size, observation=False)

    def _close_renderers(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    def close(self):
        self._close_renderers()

    # -- gym API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._build(self.np_random)
        self.instruction = self.task.describe()
        s = self.scene_state()
        conds = self.task.evaluate(s, self.goals)
        return self._obs(s), self._info(conds)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}; {self.control_mode} expects "
                             f"{self.action_space.shape} in [-1, 1]")
        check_action_finite(action, self.control_mode)
        self.controller.apply(np.clip(action, -1.0, 1.0))
        mujoco.mj_step(self.model, self.data, nstep=N_SUBSTEPS)
        _raise_if_unstable(self.data, self.task_cls.name)
        s = self.scene_state()
        conds = self.task.evaluate(s, self.goals)
        if self.reward_mode == "dense":
            reward = self.task.dense_reward(s, self.goals, conds)
        else:
            reward = float(conds["success"])
        return self._obs(s), reward, bool(conds["success"]), False, self._info(conds)

    def _info(self, conds: dict[str, bool]) -> dict:
        return {"success": bool(conds["success"]), "task": self.task_cls.name, "instruction": self.instruction,
                "conditions": {k: v for k, v in conds.items() if k != "success"}}
