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

from envs.core import robot
from envs.core.observation import CAMERAS, IMAGE_OBS_MODES
from policies.common.export_spec import ACTION_OUTPUT, NOISE_INPUT, OBS_INPUT, ExportSpec
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
    if not run["env"]:
        raise ExportError(f"cannot tell which task {ckpt} was trained on: no {RUN_CONFIG} in it or the two "
                          f"directories above, and its policy config names no task; pass --env <task>")
    run["config_file"] = config_file
    return run


def make_run_env(run: dict, **kwargs):
    """The environment the policy was trained in (generated-task library loaded first)."""
    import gymnasium as gym

    import envs

    if run.get("library"):
        envs.load_library(run["library"])
    envs.get_task(run["env"])  # an unknown name -> UnknownTaskError listing the known tasks
    return gym.make(envs.env_id(run["env"]), sim=run["sim"], obs_mode=run["obs_mode"],
                    control_mode=run["control_mode"], **kwargs)


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


def _observation(env, spec: ExportSpec, obs_mode: str) -> dict:
    u = env.unwrapped
    layout = u.state_layout()
    n = max(s.stop for s in layout.values())
    if n != spec.obs_dim:
        raise ExportError(f"the policy expects {spec.obs_dim}-dim observations but task {u.task_cls.name!r} "
                          f"({obs_mode}) gives {n}; pass the --env/--obs-mode it was trained with")
    fields = [{"name": k, "slice": [s.start, s.stop], **_field_info(k)} for k, s in layout.items()]
    return {"keys": [{"name": "state", "shape": [n], "dtype": "float32", "fields": fields}],
            "history": spec.n_obs_steps,
            "history_order": "oldest first; the runtime keeps it (after reset the first observation fills it)",
            "dict_observations": "when the env returns a dict (obs_mode other than state), the policy reads "
                                 "its 'state' entry"}


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


def _cameras(env, obs_mode: str) -> list[dict]:
    """Names, resolution, pinhole intrinsics and pose of the cameras behind image observations."""
    if obs_mode not in IMAGE_OBS_MODES:
        return []
    u = env.unwrapped
    model = getattr(u, "model", None)
    if model is None or not hasattr(u, "image_size"):
        return [{"note": "camera intrinsics are only read from the MuJoCo backend"}]
    out, size = [], u.image_size
    for name in CAMERAS:
        cam = model.camera(name)
        f = 0.5 * size / np.tan(np.deg2rad(float(cam.fovy[0])) / 2)
        out.append({"name": name, "width": size, "height": size,
                    "intrinsics": {"fx": f, "fy": f, "cx": (size - 1) / 2, "cy": (size - 1) / 2},
                    "fovy_deg": float(cam.fovy[0]), "mount": "wrist (moves with the hand)" if name == "wrist"
                    else "fixed in the robot base frame", "pos": cam.pos.tolist()})
    return out


def build_manifest(policy, spec: ExportSpec, run: dict, *, fmt: str, model_file: Path, source: dict,
                   opset: int | None = None) -> dict:
    env = make_run_env(run)
    try:
        env.reset(seed=0)
        u = env.unwrapped
        task = {"name": run["env"], "sim": run["sim"], "instruction_template": u.task_cls.instruction,
                "library": run.get("library")}
        observation = _observation(env, spec, run["obs_mode"])
        action = _action(env, run["control_mode"])
        cameras = _cameras(env, run["obs_mode"])
    finally:
        env.close()
    if action["shape"] != [spec.action_dim]:
        raise ExportError(f"the policy outputs {spec.action_dim}-dim actions but {run['env']} with control_mode "
                          f"{run['control_mode']} takes {action['shape'][0]}; pass the --control-mode it was trained with")
    inputs = [{"name": OBS_INPUT, "shape": ["batch", spec.n_obs_steps, spec.obs_dim], "dtype": "float32"}]
    if spec.noise_shape is not None:
        inputs.append({"name": NOISE_INPUT, "shape": ["batch", *spec.noise_shape], "dtype": "float32",
                       "distribution": "standard normal"})
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
        "robot": _robot(), "cameras": cameras, "normalization": spec.normalization, "source": source,
    }
