"""Does a trained diffusion policy act on what it observes? Two numbers from its own training data.

    python bench/condition_use.py outputs/<run> [outputs/<run2> ...] [--windows 64] [--out condition_use]

- **condition use**: the U-Net's noise prediction for the same noisy chunk and diffusion step,
  with each window's own condition against another window's (the batch shuffled), mean absolute
  change. A policy that reads its observation changes its prediction when the observation
  changes; one near 0 has learnt an unconditional action prior (it samples plausible motions
  whatever it sees).
- **position head** (a policy trained with ``aux_position_loss``): its squared error on the
  same windows over the spread of the objects' places (1 = no better than the mean place).
- **fit**: the sampled chunk against the demo's actions on the same training windows (mean
  absolute error, xyz and gripper), beside the error of always predicting the demos' mean action.
  A policy that cannot beat the mean on its own training windows will not act on unseen seeds.

Windows come from the run's own demo stores (``metrics.json``'s ``demo_stores``; ``--store`` for a run without them)
through the training dataset, with the run's observation keys. Writes
``bench/results/<--out>.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, machine_short, position_note  # noqa: E402
from train.imitation import checkpoint_dir  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def probe(run: Path, stores: dict[str, str] | None, windows: int, seed: int = 0, step: int = 20,
          rollouts: int = 0, drivers: tuple[str, ...] = ("policy",)) -> dict:
    from torch.utils.data import default_collate

    from policies import Policy
    from train.datasets.demo_store import DemoStore
    from train.datasets.multitask import MultiTaskDataset

    policy = Policy.from_pretrained(checkpoint_dir(run)).eval()
    c = policy.config
    metrics = run / "metrics.json"
    stores = (json.loads(metrics.read_text()).get("demo_stores") if metrics.exists() else None) or stores
    if not stores:
        raise SystemExit(f"{run} has no metrics.json naming its demo stores; pass --store TASK=PATH")
    if hasattr(policy, "action_tokenizer"):
        return probe_vla(run, policy, stores, windows, seed)
    if getattr(c, "n_obs_steps", None) is None or not hasattr(policy, "model"):
        raise SystemExit(f"{run}: a diffusion policy or a VLA is needed")
    head = getattr(policy, "position_head", None) is not None
    dataset = MultiTaskDataset({t: DemoStore.open(p) for t, p in stores.items()}, c.n_obs_steps, c.horizon,
                               obs_keys=tuple(c.obs_keys), target_keys=("slots",) if head else ())
    rng = np.random.default_rng(seed)
    batch = default_collate([dataset[int(i)] for i in rng.choice(len(dataset), windows, replace=False)])
    obs = batch["obs"] if (c.cameras or c.pointcloud_dim) else batch["obs"][c.obs_key]
    torch.manual_seed(seed)
    with torch.no_grad():
        instruction = policy.embed_instructions(list(batch["instruction"])) if policy.reads_instruction else None
        cond = policy._condition(obs, instruction)
        position = position_error(policy._positions, batch) if head else None
        noisy = torch.randn(windows, c.horizon, c.action_dim)
        t = torch.full((windows,), step, dtype=torch.long)
        shuffled = cond[torch.randperm(windows)]
        base = policy.model(noisy, t, cond)
        use = (base - policy.model(noisy, t, shuffled)).abs().mean().item()
        # the same with one input shuffled at a time: what the U-Net reads
        perm = torch.randperm(windows)
        by_input = {}
        for key in (obs if isinstance(obs, dict) else {c.obs_key: obs}):
            one = {**obs, key: obs[key][perm]} if isinstance(obs, dict) else obs[perm]
            by_input[key] = (base - policy.model(noisy, t, policy._condition(one, instruction))).abs().mean().item()
        if instruction is not None:
            words = tuple(x[perm] for x in instruction) if isinstance(instruction, tuple) else instruction[perm]
            by_input["instruction"] = (base - policy.model(noisy, t, policy._condition(obs, words))).abs().mean().item()
        extra = {"instruction_embedding": instruction} if policy.reads_instruction else {}
        chunk = policy(obs, **extra).numpy()
    if head and rollouts:
        from policies.common.grounding import position_spread

        spread = position_spread(batch)
        position = {"training_windows": position, "rollouts": [
            rollout_position_error(policy, task, list(range(100000, 100000 + rollouts)), c.image_size, spread, driver)
            for task in stores for driver in drivers]}
    demo = batch["action"].numpy()
    start = c.n_obs_steps - 1                      # the chunk's first action is the current step's
    err = np.abs(chunk - demo[:, start:start + chunk.shape[1]]).mean((0, 1))
    mean = np.abs(demo - demo.reshape(-1, demo.shape[-1]).mean(0)).mean((0, 1))
    return {"run": str(run), "windows": windows, "diffusion_step": step, "condition_use": round(use, 4),
            "condition_use_by_input": {k: round(v, 4) for k, v in by_input.items()},
            "fit_xyz": round(float(err[:3].mean()), 4), "mean_action_xyz": round(float(mean[:3].mean()), 4),
            "fit_gripper": round(float(err[-1]), 4), "mean_action_gripper": round(float(mean[-1]), 4),
            "position_head_error": position, "obs_encoder": c.obs_encoder, "cameras": list(c.cameras),
            "obs_key": c.obs_key}


def position_error(guess: torch.Tensor, batch: dict) -> float:
    """The position head's squared error over the spread of the objects' places (0: exact, 1: no
    better than the mean place): how well the policy's own features say where things are."""
    from policies.common.grounding import position_loss, position_spread

    return round(position_loss(guess, batch).item() / max(position_spread(batch), 1e-9), 4)


def probe_vla(run: Path, policy, stores: dict[str, str], windows: int, seed: int = 0) -> dict:
    """The VLA's decoded chunk on training windows: its error against the demos, and how much it
    changes when the batch's images, proprio or instructions are shuffled (raw action units)."""
    from torch.utils.data import default_collate

    from policies.vla.action_tokenizer import unnormalize_actions
    from train.datasets.demo_store import DemoStore
    from train.datasets.multitask import MultiTaskDataset

    c = policy.config
    keys = (*c.camera_keys, "proprio") if c.use_proprio else c.camera_keys
    head = getattr(policy, "position_head", None) is not None
    dataset = MultiTaskDataset({t: DemoStore.open(p) for t, p in stores.items()}, 1, c.chunk_size, obs_keys=keys,
                               target_keys=("slots",) if head else ())
    rng = np.random.default_rng(seed)
    batch = default_collate([dataset[int(i)] for i in rng.choice(len(dataset), windows, replace=False)])
    images = [batch["obs"][k][:, -1].numpy() for k in c.camera_keys]
    proprio = batch["obs"]["proprio"][:, -1].numpy() if c.use_proprio else None
    words = list(batch["instruction"])
    perm = rng.permutation(windows)

    def act(images, words, proprio):
        with torch.no_grad():
            return unnormalize_actions(policy.decode(images, words, proprio), policy.action_stats)

    chunk = act(images, words, proprio)
    change = {"images": np.abs(act([i[perm] for i in images], words, proprio) - chunk).mean(),
              "instruction": np.abs(act(images, [words[i] for i in perm], proprio) - chunk).mean()}
    if proprio is not None:
        change["proprio"] = np.abs(act(images, words, proprio[perm]) - chunk).mean()
    position = None
    if head:   # the head's guess on the same windows (it runs inside the training loss)
        guessed = {}
        hook = policy.position_head.register_forward_hook(lambda m, i, o: guessed.update(o=o))
        with torch.no_grad():
            policy.compute_loss(batch)
        hook.remove()
        position = position_error(guessed["o"], batch)
    demo = batch["action"].numpy()[:, :c.chunk_size]
    err = np.abs(chunk - demo).mean((0, 1))
    mean = np.abs(demo - demo.reshape(-1, demo.shape[-1]).mean(0)).mean((0, 1))
    return {"run": str(run), "windows": windows, "policy": "vla",
            "action_change": {k: round(float(v), 4) for k, v in change.items()},
            "fit_xyz": round(float(err[:3].mean()), 4), "mean_action_xyz": round(float(mean[:3].mean()), 4),
            "fit_gripper": round(float(err[-1]), 4), "mean_action_gripper": round(float(mean[-1]), 4),
            "position_head_error": position, "cameras": list(c.cameras)}


# the TCP's distance to the task's first object: where a grasp needs the guess precise, and farther
NEAR_BINS = (("under 3 cm", 0.03), ("3-10 cm", 0.10), ("over 10 cm", float("inf")))


def rollout_position_error(policy, task: str, seeds: list[int], image_size: int, spread: float,
                           driver: str = "policy") -> dict:
    """The position head's error over ``spread`` on unseen-seed episodes (MuJoCo) driven by the
    policy itself (``driver="policy"``) or by the oracle (``"oracle"``: the demos' kind of states,
    seeds the policy never saw), at each re-plan against the true places, at the first step and
    later with the gripper open or closed: does its guess hold off the demos' states? Beside it,
    per phase, the error in cm of the guessed positions (``abs_cm``) and of the guessed positions
    relative to the TCP (``rel_cm``), over the objects present; the first object's error in cm by
    how far the TCP is from it (``NEAR_BINS``: (mean, re-plans)); and the episodes' success."""
    import gymnasium as gym

    import envs
    from envs.core import observation as ob
    from planners import make_oracle
    from policies.common.grounding import AUX_OBJECTS, position_loss, position_targets
    from train.demos import _SlotsRecorder

    env = gym.make(envs.env_id(task), obs_mode="rgb", image_size=image_size)
    phases = ("first_step", "gripper_open", "gripper_closed")
    errors, cm, successes = {k: [] for k in phases}, {k: [] for k in phases}, 0
    first = {k: [] for k, _ in NEAR_BINS}
    width = ob.slots_layout()["gripper_width"].start   # state and slots both start with the proprio fields
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        truth = _SlotsRecorder(env)
        policy.reset(instruction=info["instruction"])
        oracle = make_oracle(env) if driver == "oracle" else None
        if oracle is not None:
            oracle.reset()
        open_width = obs["state"][width]
        t, done = 0, False
        while not done:   # to the env's own time limit
            replan = not policy._action_queue
            with torch.no_grad():
                action = policy.select_action(obs)
            if replan:
                batch = {"targets": {"slots": torch.from_numpy(truth(obs["state"])[None, None])}}
                err = position_loss(policy._positions, batch).item() / max(spread, 1e-9)
                # closed: closing, holding, or shut on nothing (a missed grasp)
                phase = "first_step" if t == 0 else "gripper_open" if obs["state"][width] > 0.9 * open_width \
                    else "gripper_closed"
                errors[phase].append(err)
                target, present = position_targets(batch)
                miss = (policy._positions.reshape(-1, AUX_OBJECTS, 6) - target)[present] / 10   # m
                cm[phase].append([100 * miss[:, :3].norm(dim=-1).mean().item(),
                                  100 * miss[:, 3:].norm(dim=-1).mean().item()])
                if present[0, 0]:   # the task's first object (stack_blocks: the block to move), by its distance to the TCP
                    near = target[0, 0, 3:].norm().item() / 10                          # m
                    bin_ = next(k for k, hi in NEAR_BINS if near < hi)
                    first[bin_].append(100 * (policy._positions.reshape(-1, AUX_OBJECTS, 6)[0, 0, :3]
                                              - target[0, 0, :3]).norm().item() / 10)
            if oracle is not None:
                action = oracle.act(obs)
            obs, _, terminated, truncated, info = env.step(action)
            t, done = t + 1, terminated or truncated
        successes += bool(info.get("success"))
    env.close()
    out = {"task": task, "driver": driver, "seeds": seeds, "successes": successes,
           **{k: round(float(np.mean(v)), 4) if v else None for k, v in errors.items()}}
    out["first_object_abs_cm_by_tcp_distance"] = {k: (round(float(np.mean(v)), 2), len(v)) if v else None
                                                  for k, v in first.items()}
    for k in phases:
        if cm[k]:
            out[f"{k}_abs_cm"], out[f"{k}_rel_cm"] = (round(float(x), 2) for x in np.mean(cm[k], 0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--store", action="append", default=[], metavar="TASK=PATH",
                    help="a demo store to read windows from, for runs whose metrics.json names none "
                         "(a run still training, a VLA)")
    ap.add_argument("--out", default="condition_use")
    ap.add_argument("--drivers", default="policy", help="who drives the --rollouts episodes: policy, oracle or "
                                                         "policy,oracle (the oracle: the demos' kind of states)")
    ap.add_argument("--rollouts", type=int, default=0, metavar="N",
                    help="also run N unseen-seed episodes (100000...) of each store's task and report the "
                         "position head's error on them (policies with a head)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    stores = dict(s.split("=", 1) for s in args.store) or None
    drivers = tuple(args.drivers.split(","))
    if set(drivers) - {"policy", "oracle"}:
        ap.error(f"--drivers {args.drivers!r}: allowed: policy, oracle, or both comma-separated")
    rows = [probe(run, stores, args.windows, rollouts=args.rollouts, drivers=drivers) for run in args.runs]
    print(f"{'run':<28} {'condition use':>13} {'fit xyz':>8} {'mean xyz':>9} {'fit grip':>9} {'mean grip':>10}")
    for r in rows:
        if "action_change" in r:   # a VLA: its actions' change when each input is shuffled
            print(f"{Path(r['run']).name:<28} {'(VLA)':>13} {r['fit_xyz']:>8.3f} {r['mean_action_xyz']:>9.3f} "
                  f"{r['fit_gripper']:>9.3f} {r['mean_action_gripper']:>10.3f}   action change, shuffled: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["action_change"].items())
                  + position_note(r))
            continue
        print(f"{Path(r['run']).name:<28} {r['condition_use']:>13.3f} {r['fit_xyz']:>8.3f} {r['mean_action_xyz']:>9.3f} "
              f"{r['fit_gripper']:>9.3f} {r['mean_action_gripper']:>10.3f}   one input shuffled: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["condition_use_by_input"].items()) + position_note(r))
    out = RESULTS / f"{args.out}.json"
    m = machine()
    command = "python bench/condition_use.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out.write_text(json.dumps({"machine": m, "machine_short": machine_short(m), "command": command,
                               "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
