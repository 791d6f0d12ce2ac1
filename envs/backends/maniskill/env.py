"""roboforge tasks on ManiSkill3 (SAPIEN/PhysX): a scene spec compiled into a ManiSkill ``BaseEnv``.

:class:`ManiSkillBatchEnv` is the ManiSkill-native environment: ``num_envs`` parallel episodes,
torch tensors in and out with a leading batch dimension, on the simulation device (CUDA with
``physx_cuda``), partial resets through ``reset(options={"env_idx": ...})``. It follows ManiSkill's
named hooks: ``_load_scene`` builds actors from the scene spec, ``_initialize_episode`` places them
for the environments being reset, ``evaluate`` returns the task's named goal conditions and
``compute_dense_reward`` the task's staged reward, both batched (:mod:`.goals`).

:class:`ManiSkillTaskEnv` is what ``gym.make(..., sim="maniskill")`` returns for one environment:
the same Gymnasium surface as the MuJoCo backend (numpy, unbatched; same spaces, observation
layout, ``info`` and action semantics), plus ``scene_state()``, ``goals``, ``task``, ``scene``,
``control_mode`` and ``controller`` for the oracle.

Episodes are sampled exactly as on MuJoCo: environment ``i`` draws from
``gymnasium.utils.seeding.np_random(seed + i)`` -- the task's ``build`` first, then the arm's
initial joint noise -- so one seed gives the same objects, colours, poses and instruction on both
backends.
"""
from __future__ import annotations

import warnings
from functools import cached_property

import gymnasium as gym
import numpy as np
import sapien
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space
from mani_skill import PACKAGE_ASSET_DIR
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import common, sapien_utils
from mani_skill.utils.building.ground import build_ground
from mani_skill.utils.structs import Actor, Articulation, Pose
from mani_skill.utils.structs.types import SimConfig

from envs.backends.maniskill.controller import ArmController, SingleArmView
from envs.backends.maniskill.goals import BatchedGoals, Snapshot
from envs.backends.maniskill.kinematics import SerialChain
from envs.core import fixtures as fx
from envs.core import observation as ob
from envs.core.fixtures import JOINT_KINDS
from envs.core.observation import CAMERAS, FRONT_CAMERA, IMAGE_OBS_MODES, POINTCLOUD_POINTS
from envs.core.robot import CONTROL_HZ, INIT_JOINT_NOISE, check_action_finite, home_qpos
from envs.core.rotations import yaw_quat
from envs.core.scene import BOWL_WALLS, Scene
from envs.core.sockets import socket_boxes
from envs.core.surface import (FEATURES, RENDER_CAMERA, RENDER_CAMERA_NAME, RENDER_SIZE, check_features,
                                check_modes, check_render_size)
from envs.core.task import Task, build_layout

PANDA_URDF = f"{PACKAGE_ASSET_DIR}/robots/panda/panda_v2.urdf"
TCP_LINK = "panda_hand_tcp"
CONTACT_FORCE = 0.05       # N: a finger "touches" an object above this contact force
OBJECT_FRICTION = 1.0      # same as the MuJoCo scene (ManiSkill's default is 0.3)
ZONE_ALPHA = 0.7
# what each roboforge obs mode asks ManiSkill's cameras for (raw float textures are read, see _camera_obs)
_MS_OBS_MODE = {"state": "state_dict", "slots": "state_dict", "rgb": "rgb", "rgbd": "rgb+depth",
                "pointcloud": "rgb+depth"}
# wrist camera on panda_hand at (0.07, 0, 0.02), looking along the hand's +z, image-up = hand -x
WRIST_CAMERA_POSE = sapien.Pose(p=[0.07, 0.0, 0.02], q=[0.70710678, 0.0, -0.70710678, 0.0])
WRIST_FOV = 70.0
CAMERA_FAR = 10.0          # m: far clip of the observation cameras; depth of pixels that hit nothing


class _Episode:
    """One environment's current episode: the task instance, its scene spec and goals."""

    def __init__(self, task_cls: type[Task], rng: np.random.Generator):
        self.rng = rng
        self.task, self.scene = build_layout(task_cls, rng)
        self.goals = self.task.goals()
        self.joint_noise = rng.normal(0.0, INIT_JOINT_NOISE, 7)
        self.instruction = self.task.describe()


class ManiSkillBatchEnv(BaseEnv):
    """A roboforge task as a batched ManiSkill3 environment (see the module docstring)."""

    SUPPORTED_ROBOTS = ["panda"]
    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(self, task_cls: type[Task], num_envs: int = 1, obs_mode: str = "state",
                 control_mode: str = "ee_delta_pose", render_mode: str | None = None, reward_mode: str = "dense",
                 image_size: int = 128, render_size: int | tuple[int, int] = RENDER_SIZE, sim_backend: str = "auto",
                 render_backend: str | None = None, sim_config: dict | None = None, **kwargs):
        check_modes("ManiSkill", obs_mode, control_mode, render_mode, reward_mode)
        check_features(task_cls, FEATURES, "ManiSkill")
        self.metadata = dict(self.metadata)  # vector wrappers update it: keep the class's own intact
        self.task_cls = task_cls
        self.roboforge_obs_mode, self.roboforge_control_mode = obs_mode, control_mode
        self.image_size, self.render_size = image_size, check_render_size(render_size)  # (width, height)
        self._episodes: list[_Episode | None] = [None] * num_envs
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._loaded_sizes = None
        self._home = home_qpos()
        if render_backend is None:  # SAPIEN renders on the CUDA device when there is one, else lavapipe
            render_backend = "gpu" if torch.cuda.is_available() else "cpu"
        super().__init__(num_envs=num_envs, obs_mode=_MS_OBS_MODE[obs_mode], reward_mode=reward_mode,
                         control_mode="pd_joint_pos", render_mode=render_mode, robot_uids="panda",
                         sim_backend=sim_backend, render_backend=render_backend,
                         sim_config=sim_config or {}, **kwargs)
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.arm.action_dim,), np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        _keep_render_context(self._render_device)

    # -- ManiSkill hooks: configuration ----------------------------------------------------
    @property
    def _default_sim_config(self):
        return SimConfig(sim_freq=100, control_freq=CONTROL_HZ)

    @property
    def _default_sensor_configs(self):
        if self.roboforge_obs_mode not in IMAGE_OBS_MODES:
            return []
        s, (eye, target, fov) = self.image_size, FRONT_CAMERA
        return [CameraConfig("front", sapien_utils.look_at(eye, target), s, s, np.deg2rad(fov), 0.01, CAMERA_FAR,
                             shader_pack="default"),
                CameraConfig("wrist", WRIST_CAMERA_POSE, s, s, np.deg2rad(WRIST_FOV), 0.01, CAMERA_FAR,
                             mount=self.agent.robot.links_map["panda_hand"], shader_pack="default")]

    @property
    def _default_human_render_camera_configs(self):
        (w, h), (eye, target, fov) = self.render_size, RENDER_CAMERA  # as the MuJoCo scene's render camera
        return CameraConfig(f"render_{RENDER_CAMERA_NAME}", sapien_utils.look_at(eye, target), w, h, np.deg2rad(fov),
                            0.01, 10, shader_pack="default")

    def _load_agent(self, options: dict):
        super()._load_agent(options, sapien.Pose(p=[0.0, 0.0, 0.0]))  # robot base = world origin

    def _load_scene(self, options: dict):
        scene = self.scene
        mat = sapien.physx.PhysxMaterial(OBJECT_FRICTION, OBJECT_FRICTION, 0.0)
        b = scene.create_actor_builder()
        b.add_box_collision(sapien.Pose(p=[0.4, 0, -0.375]), half_size=[0.55, 0.7, 0.375], material=mat)
        b.add_box_visual(sapien.Pose(p=[0.4, 0, -0.375]), half_size=[0.55, 0.7, 0.375],
                         material=sapien.render.RenderMaterial(base_color=[0.76, 0.66, 0.52, 1]))
        b.set_initial_pose(sapien.Pose())
        b.build_static(name="table")
        build_ground(scene, floor_width=6, altitude=-0.75)

        specs = [ep.scene.objects for ep in self._episodes]
        self.object_names = [o.name for o in specs[0]]
        self.object_kinds = [o.kind for o in specs[0]]
        self._views = [self._build_object([s[k] for s in specs]) for k in range(len(self.object_names))]
        self._movable = [k for k, o in enumerate(specs[0]) if o.movable]
        self._fixtures = [k for k, o in enumerate(specs[0]) if not o.movable]
        self._movable_t = torch.as_tensor(self._movable, device=self.device, dtype=torch.long)
        # articulated fixtures: index k -> the moving link's view (a finger can touch and grasp it)
        self._articulated = [k for k, o in enumerate(specs[0]) if o.kind in JOINT_KINDS]
        self._moving_links = {k: self._views[k].links[1] for k in self._articulated}
        self._revolute = {k for k in self._articulated if JOINT_KINDS[specs[0][k].kind] == "revolute"}
        self._touchable = self._movable + self._articulated
        self._touchable_t = torch.as_tensor(self._touchable, device=self.device, dtype=torch.long)
        self._movable_view = (Actor.merge([self._views[k] for k in self._movable], name="roboforge_movables")
                              if self._movable else None)
        self._loaded_sizes = [[(o.half_size, o.mass, o.hole) for o in s] for s in specs]
        self._colors = [[None] * len(self.object_names) for _ in range(self.num_envs)]
        self._contact_query = None

    def _build_object(self, objs: list) -> Actor:
        """One scene-spec object in every parallel environment (built per environment, so sizes
        and colours may differ between them), merged into one view."""
        actors = []
        for i, obj in enumerate(objs):
            name = obj.name if len(objs) == 1 else f"{obj.name}-{i}"
            if obj.kind in JOINT_KINDS:
                actors.append(_build_articulated(self.scene, obj, i, name))
                continue
            b = self.scene.create_actor_builder()
            _add_shapes(b, obj)
            b.set_scene_idxs([i])
            b.set_initial_pose(sapien.Pose(p=np.asarray(obj.pos, float), q=obj.quat))
            actors.append(b.build(name=name) if obj.movable else b.build_kinematic(name=name))
        if len(actors) == 1:
            return actors[0]
        merge = Articulation.merge if objs[0].kind in JOINT_KINDS else Actor.merge
        return merge(actors, name=objs[0].name)

    def _after_reconfigure(self, options):
        robot = self.agent.robot
        self._fingers = (robot.links_map["panda_leftfinger"], robot.links_map["panda_rightfinger"])
        limits = robot.get_qlimits()[0, :7].cpu().numpy()
        chain = SerialChain(PANDA_URDF, TCP_LINK, device=self.device)
        self.arm = ArmController(self.roboforge_control_mode, chain, limits[:, 0], limits[:, 1], self._home[:7],
                                 self.num_envs, self.device)
        self.goals = BatchedGoals(self.object_names, self.num_envs, self.device)
        m = len(self.object_names)
        self._fixture_pos = torch.zeros(self.num_envs, m, 3, device=self.device)
        self._fixture_quat = torch.zeros(self.num_envs, m, 4, device=self.device)
        self._slot_attrs = torch.zeros(self.num_envs, m, ob.ATTRIBUTE_DIM, device=self.device)
        # per articulated fixture: its handle's world position at joint 0, the joint's world axis
        # and (revolute) a world point on that axis
        self._handle0 = torch.zeros(self.num_envs, m, 3, device=self.device)
        self._joint_axis = torch.zeros(self.num_envs, m, 3, device=self.device)
        self._joint_pivot = torch.zeros(self.num_envs, m, 3, device=self.device)
        if self.scene.gpu_sim_enabled or self.num_envs > 1:
            return
        # CPU: contacts are read once per step and matched to (finger, object) by entity id
        self._finger_ids = {f._objs[0].entity.per_scene_id: j for j, f in enumerate(self._fingers)}
        self._object_ids = {self._views[k]._objs[0].per_scene_id: k for k in self._movable}
        self._object_ids.update({self._moving_links[k]._objs[0].entity.per_scene_id: k for k in self._articulated})

    # -- episodes --------------------------------------------------------------------------
    def reset(self, seed=None, options=None):
        options = dict(options or {})
        if "env_idx" in options:
            idx = np.sort(common.to_numpy(options["env_idx"]).reshape(-1).astype(int))
            options["env_idx"] = torch.as_tensor(idx, device=self.device)
        else:
            idx = np.arange(self.num_envs)
        seeds = self._episode_seeds(seed, idx)
        for j, i in enumerate(idx):
            if seeds[j] is not None or self._rngs[i] is None:
                self._rngs[i] = seeding.np_random(seeds[j])[0]
            self._episodes[i] = _Episode(self.task_cls, self._rngs[i])
        self._check_structure(idx, options)
        obs, info = super().reset(seed=seed, options=options)
        return obs, info

    def _episode_seeds(self, seed, idx) -> list:
        if seed is None:
            return [None] * len(idx)
        if np.iterable(seed):
            seed = list(seed)
            if len(seed) == self.num_envs and len(idx) != self.num_envs:
                seed = [seed[i] for i in idx]
            if len(seed) != len(idx):
                raise ValueError(f"got {len(seed)} seeds for {len(idx)} environments being reset")
            return [int(s) for s in seed]
        return [int(seed) + int(i) for i in idx]

    def _check_structure(self, idx, options) -> None:
        ref = self._episodes[idx[0]].scene.objects if self._loaded_sizes is None else None
        names = [o.name for o in ref] if ref is not None else self.object_names
        kinds = [o.kind for o in ref] if ref is not None else self.object_kinds
        for i in idx:
            objs = self._episodes[i].scene.objects
            if [o.name for o in objs] != names or [o.kind for o in objs] != kinds:
                raise RuntimeError(f"task {self.task_cls.name!r} built a different set of objects for another "
                                   f"seed; a task's objects (names and kinds) must not depend on the seed")
        if self._loaded_sizes is None or options.get("reconfigure"):
            return
        changed = [i for i in idx
                   if [(o.half_size, o.mass, o.hole) for o in self._episodes[i].scene.objects] != self._loaded_sizes[i]]
        if not changed:
            return
        if len(idx) != self.num_envs:
            raise RuntimeError(f"task {self.task_cls.name!r} changed object sizes in a partial reset; ManiSkill "
                               f"cannot rebuild one parallel environment: reset all environments together")
        options["reconfigure"] = True  # sizes changed: rebuild the scene (as MuJoCo recompiles)

    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        idx = np.sort(common.to_numpy(env_idx).reshape(-1).astype(int))
        eps = [self._episodes[i] for i in idx]
        dev = self.device
        for k, view in enumerate(self._views):
            objs = [ep.scene.objects[k] for ep in eps]
            p = torch.as_tensor(np.stack([o.pos for o in objs]), device=dev, dtype=torch.float32)
            q = torch.as_tensor(yaw_quat([o.yaw for o in objs]), device=dev, dtype=torch.float32)
            view.set_pose(Pose.create_from_pq(p, q))
            if objs[0].kind in JOINT_KINDS:
                self._init_joint(view, k, idx, objs)
            if not objs[0].movable:
                self._fixture_pos[idx, k], self._fixture_quat[idx, k] = p, q
            for i, o in zip(idx, objs):
                if self._colors[i][k] != o.color:
                    _set_color(view, i if len(view._objs) > 1 else 0, o)
                    self._colors[i][k] = o.color
        qpos = np.tile(self._home, (len(idx), 1))
        qpos[:, :7] += np.stack([ep.joint_noise for ep in eps])
        qpos = torch.as_tensor(qpos, device=dev, dtype=torch.float32)
        self.agent.reset(qpos)
        ids = torch.as_tensor(idx, device=dev)
        self.arm.reset(ids, torch.zeros(self.num_envs, 9, device=dev).index_copy(0, ids, qpos))
        half = np.array([[o.half_size for o in ep.scene.objects] for ep in eps])
        self.goals.set(idx, [ep.goals for ep in eps], half)
        if self.roboforge_obs_mode == "slots":  # colours and sizes change per episode; the count is checked here
            attrs = np.stack([ob.slot_attributes(ep.scene.objects, self.task_cls.name) for ep in eps])
            self._slot_attrs[ids] = torch.as_tensor(attrs, device=dev, dtype=torch.float32)

    def _init_joint(self, view, k: int, idx, objs) -> None:
        """Start an articulated fixture's joint where its spec says; remember its handle geometry."""
        dev = self.device
        self._handle0[idx, k] = torch.as_tensor(np.stack([fx.handle_point(o, 0.0) for o in objs]), device=dev,
                                                dtype=torch.float32)
        self._joint_axis[idx, k] = torch.as_tensor(
            np.stack([fx.to_world(o, fx.joint_spec(o).axis) - o.pos for o in objs]), device=dev, dtype=torch.float32)
        self._joint_pivot[idx, k] = torch.as_tensor(np.stack([fx.to_world(o, fx.joint_spec(o).pivot) for o in objs]),
                                                    device=dev, dtype=torch.float32)
        q0 = np.array([[o.joint_pos] for o in objs], dtype=np.float32)
        if self.scene.gpu_sim_enabled:
            ids = torch.as_tensor(idx, device=dev)
            qpos = view.qpos.clone()
            qpos[ids] = torch.as_tensor(q0, device=dev)
            view.qpos, view.qvel = qpos, torch.zeros_like(qpos)
        else:
            art = view._objs[0]
            art.qpos, art.qvel = q0[0], np.zeros(1, np.float32)

    @property
    def instructions(self) -> list[str]:
        """The language instruction of each environment's current episode."""
        return [ep.instruction for ep in self._episodes]

    def episode(self, i: int = 0) -> _Episode:
        return self._episodes[i]

    # -- stepping --------------------------------------------------------------------------
    def _step_action(self, action):
        if action is None:
            return super()._step_action(None)
        a = common.to_tensor(action, device=self.device).to(torch.float32)
        if a.ndim == 1:
            a = a[None]
        if a.shape != (self.num_envs, self.arm.action_dim):
            raise ValueError(f"action has shape {tuple(a.shape)}; {self.roboforge_control_mode} expects "
                             f"({self.num_envs}, {self.arm.action_dim}) in [-1, 1]")
        if not bool(torch.isfinite(a).all()):
            check_action_finite(a.cpu().numpy(), self.roboforge_control_mode)
        with warnings.catch_warnings():  # ManiSkill calls np.isnan on a torch tensor (numpy 2 deprecation)
            warnings.filterwarnings("ignore", "__array_wrap__", DeprecationWarning)
            super()._step_action(self.arm.command(a, self.agent.robot.get_qpos()))
        return a

    # -- state, goals, reward --------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The batched world state the goals, rewards and observations are computed from."""
        n, m, dev = self.num_envs, len(self.object_names), self.device
        pos, quat = self._fixture_pos.clone(), self._fixture_quat.clone()
        linvel, angvel = torch.zeros(n, m, 3, device=dev), torch.zeros(n, m, 3, device=dev)
        robot, mv, k = self.agent.robot, self._movable_view, len(self._movable)
        if self.scene.gpu_sim_enabled:
            if k:
                data = mv._body_data[mv._body_data_index].reshape(k, n, 13).transpose(0, 1)
                pos[:, self._movable_t], quat[:, self._movable_t] = data[..., :3], data[..., 3:7]
                linvel[:, self._movable_t], angvel[:, self._movable_t] = data[..., 7:10], data[..., 10:13]
            tcp = self.agent.tcp.pose
            tcp_pos, tcp_quat, qpos, qvel = tcp.p, tcp.q, robot.get_qpos(), robot.get_qvel()
        else:  # one scene: read SAPIEN directly (ManiSkill's CPU views assume one body per view)
            if k:
                data = np.array([[*b.entity.pose.p, *b.entity.pose.q, *b.linear_velocity, *b.angular_velocity]
                                 for b in mv._bodies], dtype=np.float32)
                data = torch.from_numpy(data)[None]
                pos[:, self._movable], quat[:, self._movable] = data[..., :3], data[..., 3:7]
                linvel[:, self._movable], angvel[:, self._movable] = data[..., 7:10], data[..., 10:13]
            tcp = self.agent.tcp._objs[0].entity_pose
            art = robot._objs[0]
            tcp_pos = torch.from_numpy(np.asarray(tcp.p, dtype=np.float32))[None]
            tcp_quat = torch.from_numpy(np.asarray(tcp.q, dtype=np.float32))[None]
            qpos = torch.from_numpy(art.qpos.astype(np.float32))[None]
            qvel = torch.from_numpy(art.qvel.astype(np.float32))[None]
        joints = torch.zeros(n, m, device=dev)
        for k in self._articulated:  # reported at the handle (envs.core.fixtures)
            view = self._views[k]
            if self.scene.gpu_sim_enabled:
                jq, jv = view.qpos[:, :1], view.qvel[:, :1]
                lq = self._moving_links[k].pose.q
            else:
                art = view._objs[0]
                jq = torch.as_tensor(art.qpos[:1], dtype=torch.float32)[None]
                jv = torch.as_tensor(art.qvel[:1], dtype=torch.float32)[None]
                lq = torch.as_tensor(np.asarray(self._moving_links[k]._objs[0].entity_pose.q), dtype=torch.float32)[None]
            joints[:, k] = jq[:, 0]
            axis = self._joint_axis[:, k]
            if k in self._revolute:  # the handle turned about the hinge (fx.handle_point, batched)
                arm = _turn(self._handle0[:, k] - self._joint_pivot[:, k], axis, jq)
                pos[:, k], linvel[:, k] = self._joint_pivot[:, k] + arm, jv * torch.cross(axis, arm, dim=-1)
            else:
                pos[:, k], linvel[:, k] = self._handle0[:, k] + jq * axis, jv * axis
            quat[:, k] = lq
        touching, grasped = self._finger_contacts()
        return Snapshot(pos, quat, linvel, angvel, tcp_pos, tcp_quat, qpos, qvel, touching, grasped, joints,
                        [self.object_names[k] for k in self._articulated])

    def _finger_contacts(self):
        """(touching, grasped), each (N, M) bool: contact force above ``CONTACT_FORCE`` between an
        object and one finger / both fingers."""
        n, m = self.num_envs, len(self.object_names)
        force = torch.zeros(2, n, m, device=self.device)
        if not self._touchable:
            pass
        elif self.scene.gpu_sim_enabled:
            px = self.scene.px
            if self._contact_query is None:
                bodies = {k: (self._moving_links[k] if k in self._moving_links else self._views[k])._bodies
                          for k in self._touchable}
                pairs = [(f._bodies[i], bodies[k][i]) for f in self._fingers for k in self._touchable for i in range(n)]
                self._contact_query = px.gpu_create_contact_pair_impulse_query(pairs)
            px.gpu_query_contact_pair_impulses(self._contact_query)
            imp = self._contact_query.cuda_impulses.torch().reshape(2, len(self._touchable), n, 3)
            force[:, :, self._touchable_t] = (torch.linalg.norm(imp, dim=-1) / px.timestep).transpose(1, 2)
        else:
            imp = np.zeros((2, m, 3))
            fingers, objects = self._finger_ids, self._object_ids
            for c in self.scene.px.get_contacts():
                a, b = c.bodies[0].entity.per_scene_id, c.bodies[1].entity.per_scene_id
                if a in fingers and b in objects:
                    f, k, sign = fingers[a], objects[b], 1.0
                elif b in fingers and a in objects:
                    f, k, sign = fingers[b], objects[a], -1.0
                else:
                    continue
                for pt in c.points:
                    imp[f, k] += sign * np.asarray(pt.impulse)
            force[:, 0] = torch.as_tensor(np.linalg.norm(imp, axis=-1) / self.scene.px.timestep, dtype=torch.float32)
        touch = force > CONTACT_FORCE
        return touch[0] | touch[1], touch[0] & touch[1]

    def get_info(self) -> dict:
        info = super().get_info()
        info["task"] = self.task_cls.name  # one task per batch: the registered name, as on MuJoCo
        return info

    def evaluate(self) -> dict:
        self._snap = self.snapshot()
        conds, self._evals = self.goals.evaluate(self._snap)
        return conds

    def compute_dense_reward(self, obs, action, info):
        return self.goals.dense_reward(self._snap, info, self._evals)

    def compute_normalized_dense_reward(self, obs, action, info):
        return self.compute_dense_reward(obs, action, info)  # already in [0, 1]

    def compute_sparse_reward(self, obs, action, info):
        return info["success"].to(torch.float32)

    def scene_state(self, i: int = 0):
        """Environment ``i``'s privileged state as a numpy :class:`SceneState` (oracles read this)."""
        return self._snap.scene_state(i, self.object_names)

    # -- observations ----------------------------------------------------------------------
    def state_layout(self) -> dict[str, slice]:
        """Names of the slices of the ``state`` observation vector (:func:`envs.core.observation.state_layout`)."""
        names = self.object_names
        return ob.state_layout([names[k] for k in self._movable], [names[k] for k in self._fixtures],
                               len(self.goals._slots))

    def _state_obs(self, s: Snapshot) -> torch.Tensor:
        return ob.state_observation(
            s.qpos[:, :7], s.qvel[:, :7], s.qpos[:, 7:9].sum(1, keepdim=True), s.tcp_pos, s.tcp_quat,
            objects=[(s.pos[:, k], s.quat[:, k]) for k in self._movable],
            fixtures=[s.pos[:, k] for k in self._fixtures],
            goal_deltas=self.goals.deltas(s, self._evals))

    def _slots_obs(self, s: Snapshot) -> torch.Tensor:
        return ob.slots_observation(
            s.qpos[:, :7], s.qvel[:, :7], s.qpos[:, 7:9].sum(1, keepdim=True), s.tcp_pos, s.tcp_quat,
            pos=s.pos, quat=s.quat, attributes=self._slot_attrs, goal_objects=self.goals.goal_objects(),
            goal_deltas=torch.stack(self.goals.deltas(s, self._evals), 1) if self._evals else s.pos[:, :0])

    def get_obs(self, info: dict | None = None, unflattened: bool = False):
        if info is None:
            info = self.get_info()
        if self.roboforge_obs_mode == "slots":
            return self._slots_obs(self._snap)
        state = self._state_obs(self._snap)
        if self.roboforge_obs_mode == "state":
            return state
        return {"state": state, **self._camera_obs()}

    def _camera_obs(self) -> dict[str, torch.Tensor]:
        data = self._get_obs_sensor_data(apply_texture_transforms=False)
        out, clouds = {}, []
        for cam in CAMERAS:
            color = data[cam]["Color"][..., :3]
            if self.roboforge_obs_mode in ("rgb", "rgbd"):
                out[f"{cam}_rgb"] = (color * 255).round().clamp(0, 255).to(torch.uint8)
            if self.roboforge_obs_mode == "rgbd":
                z = data[cam]["Position"][..., 2:3]  # < 0 in front of the camera, 0 where nothing was hit
                out[f"{cam}_depth"] = torch.where(z < 0, -z, CAMERA_FAR).to(torch.float32)
            if self.roboforge_obs_mode == "pointcloud":
                xyz = data[cam]["Position"][..., :3]                               # OpenGL camera frame
                T = self._sensors[cam].camera.get_model_matrix().to(xyz.device)       # cam -> world, (N, 4, 4)
                n = xyz.shape[0]
                xyz = xyz.reshape(n, -1, 3)
                world = xyz @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
                valid = xyz[..., 2] < 0                                               # pixels that hit geometry
                clouds.append((torch.cat([world, color.reshape(n, -1, 3).to(world.dtype)], -1), valid))
        if clouds:
            out["pointcloud"] = _subsample_cloud(torch.cat([c for c, _ in clouds], 1),
                                                 torch.cat([v for _, v in clouds], 1))
        return out

    @cached_property
    def single_observation_space(self) -> spaces.Space:
        return ob.observation_space(self.roboforge_obs_mode, ob.state_dim(self.state_layout()), self.image_size)

    @cached_property
    def observation_space(self) -> spaces.Space:
        return batch_space(self.single_observation_space, n=self.num_envs)


_RENDER_CONTEXTS: dict[str, object] = {}


def _keep_render_context(device) -> None:
    """Hold one SAPIEN render system per render device for the life of the process. When the last
    one is freed SAPIEN drops its Vulkan context, and the next environment recompiles every shader
    (about 15 s on lavapipe); with this, only the first environment with cameras in a process pays."""
    if device is None or str(device) in _RENDER_CONTEXTS:
        return
    try:
        _RENDER_CONTEXTS[str(device)] = sapien.render.RenderSystem(device)
    except RuntimeError:  # no renderer on this device: nothing to keep
        _RENDER_CONTEXTS[str(device)] = None


def _subsample_cloud(cloud: torch.Tensor, valid: torch.Tensor, n_points: int = POINTCLOUD_POINTS) -> torch.Tensor:
    """Table-top points only (as on MuJoCo), ``n_points`` per environment, evenly spaced in pixel
    order (deterministic)."""
    x, y, z = cloud[..., 0], cloud[..., 1], cloud[..., 2]
    keep = valid & (z > -0.01) & (y.abs() < 0.6) & (x < 1.0)
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices       # kept points first
    count = keep.sum(1, keepdim=True)
    ranks = (torch.linspace(0, 1, n_points, device=cloud.device)[None] * (count - 1).clamp_min(0)).long()
    picked = cloud.gather(1, order.gather(1, ranks)[..., None].expand(-1, -1, cloud.shape[-1]))
    return torch.where(count[..., None] > 0, picked, torch.zeros_like(picked)).to(torch.float32)


def _add_shapes(b, obj) -> None:
    """Collision and visual shapes of one scene-spec object (same geometry as the MJCF compiler)."""
    hx, hy, hz = obj.half_size
    rgba = list(obj.rgba) if obj.kind not in ("zone", "marker") else [*obj.rgba[:3], ZONE_ALPHA]
    visual = sapien.render.RenderMaterial(base_color=rgba)
    mat = sapien.physx.PhysxMaterial(OBJECT_FRICTION, OBJECT_FRICTION, 0.0)
    if obj.kind == "block":
        b.add_box_collision(half_size=[hx, hy, hz], material=mat, density=obj.mass / (8 * hx * hy * hz))
        b.add_box_visual(half_size=[hx, hy, hz], material=visual)
    elif obj.kind == "cylinder":  # SAPIEN cylinders lie along x: stand them up
        up = sapien.Pose(q=[0.70710678, 0.0, 0.70710678, 0.0])
        b.add_cylinder_collision(up, radius=hx, half_length=hz, material=mat,
                                 density=obj.mass / (np.pi * hx * hx * 2 * hz))
        b.add_cylinder_visual(up, radius=hx, half_length=hz, material=visual)
    elif obj.kind == "zone":
        b.add_box_visual(half_size=[hx, hy, hz], material=visual)
    elif obj.kind == "marker":
        b.add_sphere_visual(radius=hx, material=visual)
    elif obj.kind in ("box", "lid"):
        shapes = fx.parts(obj)
        volume = sum(8 * np.prod(p.half) for p in shapes)
        for p in shapes:
            pose = sapien.Pose(p=list(p.center))
            if obj.movable:
                b.add_box_collision(pose, half_size=list(p.half), material=mat, density=obj.mass / volume)
            else:
                b.add_box_collision(pose, half_size=list(p.half), material=mat)
            b.add_box_visual(pose, half_size=list(p.half), material=visual)
    elif obj.kind == "bowl":
        t = 0.005  # wall / floor thickness
        up = sapien.Pose(p=[0, 0, -hz + t / 2], q=[0.70710678, 0.0, 0.70710678, 0.0])
        b.add_cylinder_collision(up, radius=hx, half_length=t / 2, material=mat)
        b.add_cylinder_visual(up, radius=hx, half_length=t / 2, material=visual)
        seg = np.pi * hx / BOWL_WALLS * 1.05
        for i in range(BOWL_WALLS):
            a = 2 * np.pi * i / BOWL_WALLS
            wall = sapien.Pose(p=[hx * np.cos(a), hx * np.sin(a), 0], q=yaw_quat(a))
            b.add_box_collision(wall, half_size=[t / 2, seg, hz], material=mat)
            b.add_box_visual(wall, half_size=[t / 2, seg, hz], material=visual)
    elif obj.kind == "socket":
        for c, h, a in socket_boxes(obj):
            wall = sapien.Pose(p=c, q=yaw_quat(a))
            b.add_box_collision(wall, half_size=h, material=mat)
            b.add_box_visual(wall, half_size=h, material=visual)
    else:
        raise ValueError(f"the ManiSkill backend has no object kind {obj.kind!r}")


def _set_color(view: Actor, i: int, obj) -> None:
    """Recolour environment ``i``'s copy of an object (colours are drawn per episode)."""
    rgba = list(obj.rgba) if obj.kind not in ("zone", "marker") else [*obj.rgba[:3], ZONE_ALPHA]
    if obj.kind in JOINT_KINDS:  # an articulation: every link's render body
        entities = [link.entity for link in view._objs[i].links]
    else:
        entities = [view._objs[i]]
    for entity in entities:
        rb = entity.find_component_by_type(sapien.render.RenderBodyComponent)
        if rb is None:  # rendering disabled
            continue
        for shape in rb.render_shapes:
            for part in getattr(shape, "parts", None) or [shape]:
                part.material.set_base_color(rgba)


def _turn(v: torch.Tensor, axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: the vectors ``v`` (N, 3) turned by ``angle`` (N, 1) rad about unit ``axis`` (N, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return v * c + torch.cross(axis, v, dim=-1) * s + axis * (axis * v).sum(-1, keepdim=True) * (1 - c)


def _build_articulated(scene, obj, i: int, name: str) -> Articulation:
    """An articulated fixture in parallel environment ``i``: a fixed root link (the cabinet) and a
    moving link (drawer or door) on the fixture's joint, from :func:`envs.core.fixtures.parts` (the MuJoCo
    compiler's geometry). PhysX does not collide a link with its parent, as the MJCF's contact
    bits keep the drawer and its cabinet apart."""
    j = fx.joint_spec(obj)
    mat = sapien.physx.PhysxMaterial(OBJECT_FRICTION, OBJECT_FRICTION, 0.0)
    visual = sapien.render.RenderMaterial(base_color=list(obj.rgba))
    b = scene.create_articulation_builder()
    b.set_scene_idxs([i])
    b.set_initial_pose(sapien.Pose(p=np.asarray(obj.pos, float), q=obj.quat))
    root = b.create_link_builder()
    root.set_name(f"{name}_base")
    moving = b.create_link_builder(root)
    moving.set_name(f"{name}_moving")
    # SAPIEN's prismatic (revolute) joints slide along (turn about) the joint frame's x: turn +x
    # onto the fixture's axis; the same frame in both links, so the moving link's frame is the
    # fixture's at joint position 0, as in the MJCF
    axis = np.asarray(j.axis, float)
    frame = sapien.Pose(p=list(j.pivot), q=_quat_from_x(axis))
    moving.set_joint_name(fx.joint_name(obj))
    moving.set_joint_properties(j.type, [[j.low, j.high]], frame, frame, friction=0.0, damping=j.damping)
    mparts = [p for p in fx.parts(obj) if p.body == "moving"]
    volume = sum(8 * np.prod(p.half) for p in mparts)
    for p in fx.parts(obj):
        link = root if p.body == "base" else moving
        pose = sapien.Pose(p=list(p.center))
        if p.body == "base":
            link.add_box_collision(pose, half_size=list(p.half), material=mat)
        else:
            link.add_box_collision(pose, half_size=list(p.half), material=mat, density=j.mass / volume)
        link.add_box_visual(pose, half_size=list(p.half), material=visual)
    art = b.build(name=name, fix_root_link=True)
    for joint in art._objs[0].active_joints:  # dry friction, as MuJoCo's frictionloss
        joint.friction = j.friction
    return art


def _quat_from_x(axis: np.ndarray) -> list[float]:
    """wxyz quaternion turning +x onto the unit vector ``axis`` (the shortest rotation)."""
    x = np.array([1.0, 0.0, 0.0])
    c = float(x @ axis)
    if c < -1 + 1e-9:  # opposite: half a turn about z
        return [0.0, 0.0, 0.0, 1.0]
    v = np.cross(x, axis)
    q = np.array([1.0 + c, *v])
    return list(q / np.linalg.norm(q))


class ManiSkillTaskEnv(gym.Env):
    """One roboforge episode on ManiSkill with the MuJoCo backend's Gymnasium surface (numpy)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(self, task_cls: type[Task], obs_mode: str = "state", control_mode: str = "ee_delta_pose",
                 render_mode: str | None = None, image_size: int = 128,
                 render_size: int | tuple[int, int] = RENDER_SIZE, reward_mode: str = "dense", num_envs: int = 1,
                 sim_backend: str = "physx_cpu", **kwargs):
        if num_envs != 1:
            raise ValueError("ManiSkillTaskEnv runs one environment; use make_vec_env for batches")
        self.base = ManiSkillBatchEnv(task_cls, num_envs=1, obs_mode=obs_mode, control_mode=control_mode,
                                      render_mode=render_mode, reward_mode=reward_mode, image_size=image_size,
                                      render_size=render_size, sim_backend=sim_backend, **kwargs)
        self.task_cls, self.obs_mode, self.control_mode = task_cls, obs_mode, control_mode
        self.render_mode, self.reward_mode = render_mode, reward_mode
        self.observation_space = self.base.single_observation_space
        self.action_space = self.base.single_action_space
        self.controller = SingleArmView(self.base)

    # the oracle's surface ------------------------------------------------------------------
    @property
    def task(self) -> Task:
        return self.base.episode(0).task

    @property
    def scene(self) -> Scene:
        return self.base.episode(0).scene

    @property
    def goals(self):
        return self.base.episode(0).goals

    @property
    def instruction(self) -> str:
        return self.base.episode(0).instruction

    def scene_state(self):
        return self.base.scene_state(0)

    def state_layout(self) -> dict[str, slice]:
        return self.base.state_layout()

    # gym API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.base.reset(seed=seed, options=options)
        return self._obs(obs), self._info(info)

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}; {self.control_mode} expects "
                             f"{self.action_space.shape} in [-1, 1]")
        check_action_finite(action, self.control_mode)
        obs, reward, terminated, _, info = self.base.step(action[None])
        return self._obs(obs), float(reward[0]), bool(terminated[0]), False, self._info(info)

    def _obs(self, obs):
        if isinstance(obs, dict):
            return {k: v[0].cpu().numpy() for k, v in obs.items()}
        return obs[0].cpu().numpy()

    def _info(self, info: dict) -> dict:
        names = [g.name for g in self.goals] + ["released", "at_rest"]
        keys = self.base.goals.slot_names + ["released", "at_rest"]
        return {"success": bool(info["success"][0]), "task": self.task_cls.name, "instruction": self.instruction,
                "conditions": {n: bool(info[k][0]) for n, k in zip(names, keys)}}

    def render(self):
        if self.render_mode != "rgb_array":
            raise ValueError("render() needs render_mode='rgb_array' at gym.make")
        return self.base.render()[0].cpu().numpy()

    def close(self):
        self.base.close()
