"""Why a trained policy fails: roll it on evaluation seeds, record the scene per step, name each failure.

    python -m bench.failures rollout RUN_DIR [--episodes 50] [--seed-start 100000] [--frames 3]
    python -m bench.failures demos STORE.h5 [STORE.h5 ...]     # compare demo stores (e.g. per backend)

``rollout`` steps the run's policy (EMA checkpoint; each episode's sampler noise seeded as in the
run's own evaluation, so with 50 episodes and the run's thread count it replays ``metrics.json``)
and, on the same seeds, the oracle; it classifies
every failed episode of the first pick-and-place goal from the privileged scene state:

- ``missed_grasp``: the object was never held off the table by both fingers;
- ``grasp_lost``: it left the fingers away from its target (dropped while carrying);
- ``misaligned_place``: released near its target but the goal does not hold (off-centre, tipped);
- ``no_release``: the goal holds but a finger still touches the object at the end;
- ``stuck_holding``: still held, goal not reached, at the timeout (``still`` when the TCP moved
  less than 1 cm over the last 40 steps);
- ``not_at_rest``: goal holds and released, but something still moves.

Writes ``RUN_DIR/failures.json`` and, with ``--frames K``, PNGs of the first K failures (start,
grasp, the moment the policy's TCP stops moving, end) under ``RUN_DIR/failure_frames/``.
MuJoCo only (it re-renders frames from recorded ``qpos``).
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
from omegaconf import OmegaConf

import envs

STILL_WINDOW, STILL_DIST = 40, 0.01  # steps, m: "the TCP did not move" at the end of an episode


def _record(env, obs) -> dict:
    u = env.unwrapped
    s = u.scene_state()
    return {"state": s, "obs": np.asarray(obs, np.float32).copy(), "qpos": u.data.qpos.copy(),
            "qvel": u.data.qvel.copy(), "lead": float(np.linalg.norm(u.controller.target_pos - s.tcp_pos))}


def rollout(act_batch, reset, task: str, seeds, sim: str = "mujoco") -> list[dict]:
    """Step one env per seed in lockstep with ``act_batch(obs (B, D)) -> (B, A)``; per-step records.
    ``reset()`` is called once, after the envs are reset."""
    envs_ = [gym.make(envs.env_id(task), sim=sim) for _ in seeds]
    obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(envs_, seeds)])
    recs = [{"seed": int(s), "steps": [_record(e, o)], "actions": [], "success": False} for e, s, o in zip(envs_, seeds, obs)]
    done = np.zeros(len(seeds), bool)
    reset()
    while not done.all():
        actions = act_batch(obs.copy())
        for i, e in enumerate(envs_):
            if done[i]:
                continue
            o, _, term, trunc, info = e.step(actions[i])
            obs[i] = o
            recs[i]["steps"].append(_record(e, o))
            recs[i]["actions"].append(np.asarray(actions[i], np.float32))
            recs[i]["success"] |= bool(info["success"])
            recs[i]["conditions"] = info["conditions"]
            done[i] = term or trunc
    for r, e in zip(recs, envs_):
        r["goals"], r["task"] = e.unwrapped.goals, e.unwrapped.task
        e.close()
    return recs


def out_of_range(rec: dict, normalizer, names: dict[int, str], limit: float = 1.5) -> dict[str, float]:
    """Observation dims whose normalized value left [-limit, limit] in the episode (name -> max |x|):
    the policy never saw such inputs in training."""
    import torch

    obs = torch.from_numpy(np.stack([s["obs"] for s in rec["steps"]]))
    z = normalizer.normalize(obs).abs().numpy()
    x = z.max(0)
    out = {"max": {names[i]: round(float(x[i]), 2) for i in np.nonzero(x > limit)[0]}}
    far = np.nonzero(z.max(1) > 3.0)[0]  # the first step with an input far outside training
    if len(far):
        t = int(far[0])
        out["first_far_step"], out["first_far_dims"] = t, [names[i] for i in np.nonzero(z[t] > 3.0)[0]]
    return out


def classify(rec: dict) -> dict:
    """Failure kind and the facts behind it for one recorded episode."""
    goal = next(g for g in rec["goals"] if g.skill == "pick_place")
    name = goal.obj.name
    st = rec["steps"]
    z0 = st[0]["state"].objects[name].pos[2]
    held = np.array([name in s["state"].grasped for s in st])
    touching = np.array([name in s["state"].touching for s in st])
    lifted = held & np.array([s["state"].objects[name].pos[2] > z0 + 0.01 for s in st])
    tcp = np.array([s["state"].tcp_pos for s in st])
    obj = np.array([s["state"].objects[name].pos for s in st])
    target = np.array([goal.target(s["state"]) for s in st])
    moved_last = float(np.linalg.norm(tcp[-1] - tcp[max(0, len(tcp) - STILL_WINDOW):], axis=1).max())
    final = st[-1]["state"]
    facts = {"seed": rec["seed"], "length": len(st) - 1, "first_lift": int(np.argmax(lifted)) if lifted.any() else None,
             "final_xy_err": float(np.linalg.norm(obj[-1, :2] - target[-1, :2])),
             "final_z_err": float(obj[-1, 2] - target[-1, 2]), "tcp_moved_last40": moved_last,
             "gripper_width_end": float(final.gripper_width), "lead_end": st[-1]["lead"],
             "conditions": rec.get("conditions", {})}
    if rec["success"]:
        kind = "success"
    elif not lifted.any():
        kind = "missed_grasp"
    elif touching[-1]:
        kind = "no_release" if goal.check(final) else "stuck_holding"
        if kind == "stuck_holding" and moved_last < STILL_DIST:
            kind = "stuck_holding_still"
    else:
        last = int(np.nonzero(held)[0][-1])
        facts["release_xy_err"] = float(np.linalg.norm(obj[last, :2] - target[last, :2]))
        facts["release_z_err"] = float(obj[last, 2] - target[last, 2])
        if facts["release_xy_err"] > 0.03 or facts["release_z_err"] > 0.03:
            kind = "grasp_lost"
        elif goal.check(final):
            kind = "not_at_rest"
        else:
            kind = "misaligned_place"
    # where the TCP stopped moving for good (the "stuck" moment), for frames and comparisons
    still = np.linalg.norm(tcp - tcp[-1], axis=1) < STILL_DIST
    facts["still_from"] = int(len(still) - np.argmin(still[::-1])) if not still.all() else 0
    facts["kind"] = kind
    return facts


def _load_policy(run_dir: Path):
    from policies import Policy
    from train.imitation import checkpoint_dir

    return Policy.from_pretrained(checkpoint_dir(run_dir))


def _render_frames(task: str, rec: dict, steps: list[int], out: Path) -> list[str]:
    import imageio.v3 as iio

    env = gym.make(envs.env_id(task), sim="mujoco", render_mode="rgb_array", render_size=384)
    env.reset(seed=rec["seed"])
    u = env.unwrapped
    import mujoco

    paths = []
    for t in steps:
        t = min(t, len(rec["steps"]) - 1)
        u.data.qpos[:], u.data.qvel[:] = rec["steps"][t]["qpos"], rec["steps"][t]["qvel"]
        mujoco.mj_forward(u.model, u.data)
        p = out / f"seed{rec['seed']}_t{t:03d}.png"
        iio.imwrite(p, env.render())
        paths.append(str(p))
    env.close()
    return paths


def cmd_rollout(args) -> None:
    import torch

    from planners import make_oracle

    run_dir = Path(args.run_dir)
    cfg = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    task = args.task or cfg.get("task", "stack_blocks")
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    from train.evaluate import episode_noise_seed

    torch.set_num_threads(args.threads)
    run_seed = args.seed
    if run_seed is None:  # the run's own seed: the same sampler noise as its evaluation
        run_seed = int(OmegaConf.load(run_dir / "config.yaml").seed) if (run_dir / "config.yaml").exists() else 0
    policy = _load_policy(run_dir)
    noise_seeds = [episode_noise_seed(run_seed, s) for s in seeds]
    recs = rollout(policy.select_action, lambda: policy.reset(noise_seeds=noise_seeds), task, seeds)
    oracle_env = gym.make(envs.env_id(task), sim="mujoco")
    oracle_len = {}
    for s in seeds:  # the oracle, one episode at a time (it reads its env's privileged state)
        obs, _ = oracle_env.reset(seed=s)
        o = make_oracle(oracle_env)
        o.reset()
        for t in range(1000):
            obs, _, term, trunc, info = oracle_env.step(o.act(obs))
            if term or trunc:
                break
        oracle_len[s] = (t + 1, bool(info["success"]))
    facts = [classify(r) for r in recs]
    env = gym.make(envs.env_id(task), sim="mujoco")
    names = {i: f"{k}[{i - sl.start}]" for k, sl in env.unwrapped.state_layout().items() for i in range(sl.start, sl.stop)}
    env.close()
    for r, f in zip(recs, facts):
        f["obs_out_of_range"] = out_of_range(r, policy.obs_normalizer, names)
    for f in facts:
        f["oracle_length"], f["oracle_success"] = oracle_len[f["seed"]]
    counts = Counter(f["kind"] for f in facts)
    out = {"run_dir": str(run_dir), "seeds": [seeds[0], seeds[-1]], "counts": dict(counts),
           "success_rate": counts["success"] / len(facts), "episodes": facts}
    if args.frames:
        frames_dir = run_dir / "failure_frames"
        frames_dir.mkdir(exist_ok=True)
        fails = [(r, f) for r, f in zip(recs, facts) if f["kind"] != "success"][:args.frames]
        for r, f in fails:
            steps = [0, f["first_lift"] or 0, f["still_from"], len(r["steps"]) - 1]
            f["frames"] = _render_frames(task, r, steps, frames_dir)
    (run_dir / "failures.json").write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps(out["counts"]), f"success={out['success_rate']:.2f}")
    for f in facts:
        if f["kind"] != "success":
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in f.items()
                   if k not in ("conditions", "frames")})


# -- demo store comparison --------------------------------------------------------------------
def demo_stats(path: Path, task: str = "stack_blocks") -> dict:
    """Numbers that differ between backends' demos: lengths, idle steps, gripper timing, and how
    much the held object's observed pose moves relative to the TCP while held."""
    from train.datasets.demo_store import DemoStore

    store = DemoStore.open(path)
    env = gym.make(envs.env_id(task), sim="mujoco")
    lay = env.unwrapped.state_layout()
    env.close()
    name = "top"
    lengths, idle_frac, idle_run, close_steps, rel_jitter, quat_jitter, width_held, speed = [], [], [], [], [], [], [], []
    for ep in store.episodes:
        a, o = ep.actions, ep.obs
        lengths.append(len(a))
        still = np.linalg.norm(a[:, :6], axis=1) < 1e-3
        idle_frac.append(still.mean())
        run = best = 0
        for x in still:
            run = run + 1 if x else 0
            best = max(best, run)
        idle_run.append(best)
        width = o[:, lay["gripper_width"]][:, 0]
        closing = np.nonzero(a[:, -1] < 0)[0]
        if len(closing):
            t0 = closing[0]
            w = width[t0:]
            settle = np.nonzero(np.abs(np.diff(w)) < 2e-4)[0]
            close_steps.append(int(settle[0]) + 1 if len(settle) else len(w))
            held = np.arange(t0 + 10, min(len(o), t0 + 60))  # carrying
            rel = o[held][:, lay[f"{name}.rel_pos"]]
            rel_jitter.append(float(np.linalg.norm(np.diff(rel, axis=0), axis=1).mean()))
            q = o[held][:, lay[f"{name}.quat"]]
            quat_jitter.append(float(np.linalg.norm(np.diff(q, axis=0), axis=1).mean()))
            width_held.append(float(w[10:40].mean()))
        speed.append(float(np.linalg.norm(np.diff(o[:, lay["tcp_pos"]], axis=0), axis=1).mean()))
    f = lambda x: {"mean": float(np.mean(x)), "min": float(np.min(x)), "max": float(np.max(x))}  # noqa: E731
    return {"store": str(path), "sim": store.meta.get("sim"), "episodes": len(store.episodes),
            "length": f(lengths), "idle_step_fraction": f(idle_frac), "longest_idle_run": f(idle_run),
            "gripper_close_steps": f(close_steps), "held_rel_pos_jitter_m": f(rel_jitter),
            "held_quat_jitter": f(quat_jitter), "held_gripper_width_m": f(width_held), "tcp_speed_m_per_step": f(speed),
            "action_abs_mean": np.abs(np.concatenate([e.actions for e in store.episodes])).mean(0).round(3).tolist()}


def cmd_demos(args) -> None:
    for p in args.stores:
        print(json.dumps(demo_stats(Path(p), args.task), indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rollout")
    r.add_argument("run_dir")
    r.add_argument("--task", default=None)
    r.add_argument("--episodes", type=int, default=50)
    r.add_argument("--seed-start", type=int, default=100000)
    r.add_argument("--seed", type=int, default=None,
                   help="run seed the sampler noise derives from (default: the run's config.yaml)")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--frames", type=int, default=0, help="render PNGs of the first K failures")
    d = sub.add_parser("demos")
    d.add_argument("stores", nargs="+")
    d.add_argument("--task", default="stack_blocks")
    args = ap.parse_args()
    {"rollout": cmd_rollout, "demos": cmd_demos}[args.cmd](args)


if __name__ == "__main__":
    main()
