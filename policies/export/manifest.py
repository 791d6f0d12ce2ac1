"""``manifest.json``: everything the robot side must know to feed an exported policy and apply its
actions (unitree_rl_gym's deploy config and IsaacLab's exporter are the models).

Facts come from the live environment (observation layout, action bounds, cameras), the robot and
action contract every backend implements (:mod:`envs.core.robot`: action scales, gripper
convention, joints, control rate) and the policy (history, chunking, normalization), never
restated by hand.
"""
from __future__ import annotations

import datetime as dt
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
from gymnasium import spaces as gym_spaces

from envs.core import observation as ob
from envs.core import robot
from envs.core.observation import CAMERAS, IMAGE_OBS_MODES
from policies.common.export_spec import (ACTION_OUTPUT, INSTRUCTION_INPUT, NOISE_INPUT, OBS_INPUT, ExportSpec,
                                         ObsInput)
from policies.export.errors import ExportError
from policies.export.runtime import MANIFEST_FORMAT, MANIFEST_VERSION

RUN_CONFIG = "config.yaml"

# units and frames of the state observation's fields (envs/core/observation.py); the robot
# base frame is the world frame in sim (Panda base at the origin, z up, table top at z = 0)
_FIELDS = [
    ("qpos", "rad", "arm joint positions, robot.arm_joints order"),
    ("qvel", "rad/s", "arm joint velocities, robot.arm_joints order"),
    ("gripper_width", "m", "distance between the finger pads"),
    ("tcp_pos", "m", "tool centre point position, robot base frame"),
    ("tcp_quat", "quaternion (w, x, y, z), w >= 0", "tool centre point orientation, robot base frame"),
    (".rel_pos", "m", "object position minus tcp_pos, robot base frame"),
    (".pos", "m", "object position, robot base frame"),
    (".quat", "quaternion (w, x, y, z)", "object orientation, robot base frame"),
    (".delta", "m", "goal target minus the object the goal moves, robot base frame"),
    # slots (obs_mode=slots): per slot, see envs/core/observation.py SLOT_FIELDS
    (".present", "0 or 1", "1 for an object in this slot, 0 for an empty slot (all its features 0)"),
    (".size", "m", "full extents of the object's bounding box"),
    (".kind", "one-hot", "object kind, over observation.slot_layout.kinds"),
    (".rgb", "[0, 1]", "the object's named colour"),
    (".movable", "0 or 1", "1 for an object, 0 for a fixture"),
    (".has_goal", "0 or 1", "1 if a goal moves this object"),
    (".goal_delta", "m", "that goal's target minus what it moves, robot base frame; 0 without a goal"),
]


def _field_info(name: str) -> dict:
    for key, unit, frame in _FIELDS:
        if name == key or (key.startswith(".") and name.endswith(key)):
            return {"units": unit, "meaning": frame}
    return {}


def run_settings(ckpt: Path, policy, **overrides) -> dict:
    """Task, sim, obs_mode, control_mode and library of the run that trained ``ckpt``: from its
    ``config.yaml`` (in ckpt or up to two levels above: run/checkpoints/last), else the policy
    config (RL policies record task and env kwargs); ``overrides`` (not None) win."""
    from omegaconf import OmegaConf

    cfg, config_file = {}, None
    for d in (ckpt, ckpt.parent, ckpt.parent.parent):
        if (d / RUN_CONFIG).exists():
            config_file = d / RUN_CONFIG
            cfg = OmegaConf.to_container(OmegaConf.load(config_file), resolve=True)
            break
    pc = policy.config
    env_kw = getattr(pc, "env_kwargs", {}) or {}
    sim = cfg.get("sim", {})
    run = {"env": cfg.get("env") or getattr(pc, "task", "") or None,
           "sim": (sim.get("name") if isinstance(sim, dict) else sim) or env_kw.get("sim") or "mujoco",
           "obs_mode": cfg.get("obs_mode") or env_kw.get("obs_mode") or "state",
           "control_mode": cfg.get("control_mode") or env_kw.get("control_mode") or "ee_delta_pose",
           "library": cfg.get("library")}
    run.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(run["env"], str) and "," in run["env"]:  # --env a,b
        run["env"] = [t.strip() for t in run["env"].split(",") if t.strip()]
    if not run["env"]:
        raise ExportError(f"cannot tell which task {ckpt} was trained on: no {RUN_CONFIG} in it or the two "
                          f"directories above, and its policy config names no task; pass --env <task>")
    run["config_file"] = config_file
    run["tasks"] = run_tasks(run)
    if getattr(policy, "arch", None) is not None:   # the VLA: its architecture's image size
        run["image_size"] = policy.arch.image_size
    elif getattr(pc, "cameras", ()):  # images are rendered at the size the policy was trained on
        run["image_size"] = pc.image_size
    return run


def run_tasks(run: dict) -> list[str]:
    """The tasks ``run["env"]`` names (a task, a list, ``builtin`` or ``library``), the library
    loaded first; an unknown name -> UnknownTaskError listing the known tasks."""
    import envs

    library_tasks = envs.load_library(run["library"]) if run.get("library") else []
    tasks = envs.resolve_tasks(run["env"], library_tasks)
    if not tasks:
        raise ExportError(f"env={run['env']!r} names no task (library {run.get('library')})")
    return tasks


def make_run_env(run: dict, task: str | None = None, **kwargs):
    """The environment of ``task`` (default: the run's first) as the policy was trained in it
    (modes, image size; a generated-task library loaded first)."""
    import gymnasium as gym

    import envs

    tasks = run.get("tasks") or run_tasks(run)
    task = task or tasks[0]
    if run.get("library") and task not in envs.list_tasks():
        envs.load_library(run["library"])
    envs.get_task(task)  # an unknown name -> UnknownTaskError listing the known tasks
    if run.get("image_size") and run["obs_mode"] in ("rgb", "rgbd"):
        kwargs.setdefault("image_size", run["image_size"])
    return gym.make(envs.env_id(task), sim=run["sim"], obs_mode=run["obs_mode"], control_mode=run["control_mode"],
                    **kwargs)


def _version() -> str:
    try:
        v = metadata.version("roboforge")
    except metadata.PackageNotFoundError:
        v = "unknown"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = ""
    return f"{v}+g{rev}" if rev else v


def _fields(layout: dict) -> list[dict]:
    return [{"name": k, "slice": [s.start, s.stop], **_field_info(k)} for k, s in layout.items()]


def _observation(env, spec: ExportSpec, obs_mode: str) -> dict:
    """The observation keys the policy reads, each with the graph input it feeds: the vector
    (``state``, ``slots`` or ``proprio``) with its fields, then the camera images."""
    u = env.unwrapped
    state_layout = u.state_layout()
    task = u.task_cls.name
    if (spec.obs_key == "slots") != (obs_mode == "slots"):   # the env gives slots only in that mode
        raise ExportError(f"the policy reads {spec.obs_key} observations but task {task!r} with obs_mode={obs_mode} "
                          f"gives {'slots' if obs_mode == 'slots' else 'state'}; pass the --obs-mode it was "
                          f"trained with")
    if spec.obs_key == "slots":
        layout, source = ob.slots_layout(), None
    elif spec.obs_key == "proprio":
        layout = {k: s for k, s in state_layout.items() if s.stop <= ob.AGENT_DIM}
        source = {"key": "state", "slice": [0, ob.AGENT_DIM],
                  "meaning": "the robot's own part of the state vector (no objects, no goals)"}
    else:
        layout, source = state_layout, None
    n = max(s.stop for s in layout.values())
    if n != spec.obs_dim:
        raise ExportError(f"the policy expects {spec.obs_dim}-dim observations but task {task!r} ({obs_mode}) "
                          f"gives {n} ({spec.obs_key}); pass the --env/--obs-mode it was trained with")
    vector = {"name": spec.obs_key, "input": OBS_INPUT, "shape": [n], "dtype": "float32", "fields": _fields(layout)}
    if source:
        vector["from"] = source
    keys = [vector]
    space = env.observation_space
    for img in spec.images:
        got = space[img.name].shape if isinstance(space, gym_spaces.Dict) and img.name in space.spaces else None
        if got != img.shape:
            raise ExportError(f"the policy reads {img.name} {list(img.shape)} but task {task!r} with "
                              f"obs_mode={obs_mode} gives {list(got) if got else 'no such key'}; pass the "
                              f"--obs-mode it was trained with")
        keys.append({"name": img.name, "input": img.name, "shape": list(img.shape), "dtype": img.dtype,
                     "camera": img.camera, "units": "RGB 0-255, rows top to bottom" if img.dtype == "uint8"
                     else "depth along the optical axis, m"})
    for o in spec.observations:
        keys.append(_observation_input(o, space, task, obs_mode))
    out = {"keys": keys, "history": spec.n_obs_steps,
           "history_order": "oldest first; the runtime keeps it (after reset the first observation fills it)",
           "dict_observations": "the env's dict observation is read key by key; "
                                + ("proprio is taken from state[0:22] when the dict has no proprio key"
                                   if source else f"the policy reads its {spec.obs_key!r} entry")}
    if spec.obs_key == "slots":
        out["slot_layout"] = {
            "what": "task-independent object-centric observation: robot proprioception, then max_objects slots "
                    "of slot_dim features, slot k = the scene's k-th object in build order, empty slots all 0",
            "agent_dim": ob.AGENT_DIM, "max_objects": ob.MAX_OBJECTS, "slot_dim": ob.SLOT_DIM,
            "slot_fields": [{"name": k, "size": size, **_field_info("." + k)} for k, size in ob.SLOT_FIELDS],
            "kinds": list(ob.SLOT_KINDS)}
    return out


def _observation_input(o: ObsInput, space, task: str, obs_mode: str) -> dict:
    """A point cloud, a sub-goal: checked against the env's key; a key the env lacks (the sub-goal,
    added by a wrapper) must say in its ``source`` where it comes from."""
    spaces = space.spaces if isinstance(space, gym_spaces.Dict) else {}
    if o.name in spaces and tuple(spaces[o.name].shape) != o.shape:
        raise ExportError(f"the policy reads {o.name} {list(o.shape)} but task {task!r} with obs_mode={obs_mode} "
                          f"gives {list(spaces[o.name].shape)}; pass the --obs-mode it was trained with")
    if o.name not in spaces and "source" not in o.manifest:
        raise ExportError(f"the policy reads {o.name} {list(o.shape)} but task {task!r} with obs_mode={obs_mode} "
                          f"gives no such key; pass the --obs-mode it was trained with")
    entry = {"name": o.name, "input": o.name, "shape": list(o.shape), "dtype": "float32", **o.manifest}
    if not o.history:   # the runtime feeds the newest one, not a history
        entry["history"] = False
    return entry


def _action(env, control_mode: str) -> dict:
    space = env.action_space
    common = {"shape": list(space.shape), "dtype": "float32", "low": space.low.tolist(), "high": space.high.tolist(),
              "gripper": {"index": int(space.shape[0]) - 1, "open": robot.GRIPPER_OPEN, "closed": robot.GRIPPER_CLOSED,
                          "width_open_m": 2 * robot.GRIPPER_MAX,
                          "meaning": "finger opening target, linear from closed (-1) to 80 mm open (+1)"}}
    if control_mode == "ee_delta_pose":
        return {"control_mode": control_mode, **common,
                "semantics": "end-effector delta pose in the robot base frame: [dx, dy, dz] translation and "
                             "[rx, ry, rz] rotation (axis-angle) of the tool centre point per control step, "
                             "then the gripper; the Cartesian target accumulates (it is not re-read from the "
                             "measured pose each step) and is solved to joint targets by damped least squares IK",
                "components": [{"name": "translation", "slice": [0, 3]}, {"name": "rotation", "slice": [3, 6]},
                               {"name": "gripper", "slice": [6, 7]}],
                "scale": {"translation_m_per_step": robot.POS_SCALE, "rotation_rad_per_step": robot.ROT_SCALE,
                          "max_target_lead_m": robot.MAX_LEAD},
                "frame": "robot base frame", "rotation_representation": "axis-angle (rad)",
                "workspace_m": {"low": robot.WORKSPACE[0].tolist(), "high": robot.WORKSPACE[1].tolist()}}
    u = env.unwrapped
    ctl = getattr(u, "controller", None)
    limits = {"low": ctl.low.tolist(), "high": ctl.high.tolist()} if ctl is not None else None
    return {"control_mode": control_mode, **common,
            "semantics": "absolute arm joint position targets, [-1, 1] mapped linearly onto the joint limits "
                         "(robot.arm_joints order), then the gripper",
            "components": [{"name": "arm_joints", "slice": [0, 7]}, {"name": "gripper", "slice": [7, 8]}],
            "joint_limits_rad": limits}


def _robot() -> dict:
    return {"name": robot.ROBOT_NAME, "model": "assets/panda/panda.xml (MuJoCo); ManiSkill's panda agent",
            "arm_joints": list(robot.ARM_JOINTS), "gripper_joints": list(robot.GRIPPER_JOINTS),
            "home_qpos": np.round(robot.home_qpos()[:7], 6).tolist(),
            "base_frame": "z up, x forward from the robot base; the table top is at z = 0"}


def _cameras(env, obs_mode: str, spec: ExportSpec) -> list[dict]:
    """Names, resolution, pinhole intrinsics, pose and (for a policy reading them) the crop and
    observation keys of the cameras behind image observations."""
    if obs_mode not in IMAGE_OBS_MODES:
        return []
    read = {}
    for img in spec.images:
        read.setdefault(img.camera, []).append(img.name)
    names = [c for c in CAMERAS if c in read] if read else list(CAMERAS)
    u = env.unwrapped
    model = getattr(u, "model", None)
    if model is None or not hasattr(u, "image_size"):
        return [{"name": n, "keys": read.get(n, []), "note": "camera intrinsics are only read from the MuJoCo backend"}
                for n in names]
    out, size = [], u.image_size
    for name in names:
        cam = model.camera(name)
        f = 0.5 * size / np.tan(np.deg2rad(float(cam.fovy[0])) / 2)
        entry = {"name": name, "width": size, "height": size,
                 "intrinsics": {"fx": f, "fy": f, "cx": (size - 1) / 2, "cy": (size - 1) / 2},
                 "fovy_deg": float(cam.fovy[0]), "mount": "wrist (moves with the hand)" if name == "wrist"
                 else "fixed in the robot base frame", "pos": cam.pos.tolist()}
        if name in read:
            entry.update(keys=read[name], crop=spec.image_processing.get("crop"))
        out.append(entry)
    return out


def _inputs(spec: ExportSpec) -> list[dict]:
    """The graph's inputs in signature order (:mod:`policies.common.export_spec`)."""
    inputs = [{"name": OBS_INPUT, "shape": ["batch", spec.n_obs_steps, spec.obs_dim], "dtype": "float32",
               "meaning": f"raw {spec.obs_key} observations, oldest first"}]
    for img in spec.images:
        inputs.append({"name": img.name, "shape": ["batch", spec.n_obs_steps, *img.shape], "dtype": img.dtype,
                       "meaning": f"{img.camera} camera, as the env gives it, oldest first"})
    for o in spec.observations:
        inputs.append({"name": o.name, "shape": ["batch", *([spec.n_obs_steps] if o.history else []), *o.shape],
                       "dtype": "float32", "meaning": o.manifest.get("meaning", f"the env's {o.name}")
                       + (", oldest first" if o.history else ", the newest one only")})
    if spec.instruction:
        shape = ["batch", *([spec.instruction["tokens"]] if "tokens" in spec.instruction else []), spec.instruction["dim"]]
        inputs.append({"name": INSTRUCTION_INPUT, "shape": shape, "dtype": "float32",
                       "meaning": spec.instruction.get("meaning",
                                                       f"the episode's instruction embedded by {spec.instruction['encoder']}")})
    if spec.noise_shape is not None:
        inputs.append({"name": NOISE_INPUT, "shape": ["batch", *spec.noise_shape], "dtype": "float32",
                       "distribution": "standard normal"})
    return inputs


def _language(spec: ExportSpec, text_encoder: dict | None) -> dict | None:
    """What the runtime needs to turn an instruction into the graph's embedding input."""
    if not spec.instruction:
        return None
    tokens = spec.instruction.get("tokens")
    accepts = (["instruction (a string; embedded by text_encoder below)"] if text_encoder else []) + \
        [f"instruction_embedding ({f'{tokens} x ' if tokens else ''}{spec.instruction['dim']} float32, "
         f"{spec.instruction.get('meaning', 'unit norm, by ' + spec.instruction['encoder'])})"]
    return {"encoder": spec.instruction["encoder"], "dim": spec.instruction["dim"], "input": INSTRUCTION_INPUT,
            **({"tokens": tokens} if tokens else {}),
            "runtime_accepts": accepts, "text_encoder": text_encoder,
            "per": "episode: reset(instruction=...) or reset(instruction_embedding=...); "
                   "ExportedPolicy.instruction_input says which it was given"}


def build_manifest(policy, spec: ExportSpec, run: dict, *, fmt: str, model_file: Path, source: dict,
                   opset: int | None = None, text_encoder: dict | None = None) -> dict:
    """The manifest, read from the run's first task's environment (every task of a multitask run
    shares the observation layout and action space: training refused it otherwise)."""
    import envs

    env = make_run_env(run)
    try:
        _, info = env.reset(seed=0)
        u = env.unwrapped
        tasks = run["tasks"]
        name = run["env"] if isinstance(run["env"], str) else ",".join(run["env"])
        task = {"name": name, "tasks": tasks, "sim": run["sim"], "instruction_template": u.task_cls.instruction,
                "instruction_templates": {t: envs.get_task(t).instruction for t in tasks},
                "instruction_example": info.get("instruction"), "library": run.get("library")}
        observation = _observation(env, spec, run["obs_mode"])
        action = _action(env, run["control_mode"])
        cameras = _cameras(env, run["obs_mode"], spec)
    finally:
        env.close()
    if action["shape"] != [spec.action_dim]:
        raise ExportError(f"the policy outputs {spec.action_dim}-dim actions but {tasks[0]} with control_mode "
                          f"{run['control_mode']} takes {action['shape'][0]}; pass the --control-mode it was trained with")
    inputs = _inputs(spec)
    language = _language(spec, text_encoder)
    return {
        "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION,
        "roboforge_version": _version(), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "policy": {"type": policy.policy_type, "config": policy.config.to_dict(), **spec.extra},
        "model": {"file": model_file.name, "format": fmt, **({"opset": opset} if opset else {}),
                  "inputs": inputs,
                  "outputs": [{"name": ACTION_OUTPUT, "shape": ["batch", spec.n_action_steps, spec.action_dim],
                               "dtype": "float32", "meaning": "raw actions, the first to be applied now"}]},
        "runtime": "roboforge_runtime.py in this directory (numpy + onnxruntime): ExportedPolicy(dir).select_action(obs)",
        "task": task, "obs_mode": run["obs_mode"], "observation": observation, "action": action,
        "control": {"frequency_hz": robot.CONTROL_HZ, "n_obs_steps": spec.n_obs_steps,
                    "n_action_steps": spec.n_action_steps,
                    "execution": "call the graph, apply its n_action_steps actions one per control step, then "
                                 "call it again with the latest observations (receding horizon)"},
        "robot": _robot(), "cameras": cameras, "image_processing": spec.image_processing or None,
        "language": language, "normalization": spec.normalization, "source": source,
    }
