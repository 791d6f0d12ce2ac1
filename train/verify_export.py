"""Does the export behave like the checkpoint? Numerically (same inputs and noise) and in sim.

    python -m train.verify_export DIR --checkpoint CKPT [--episodes 50] [--seed-start 100000]

(``python -m policies.export verify ...`` is the same command under its older name.) Verification
lives in ``train/``, not beside the exporter, because it evaluates policies in sim with
:func:`train.evaluate.evaluate`; imports run one way, from train down to policies.

1. Fidelity: observations from the environments of the tasks the policy was trained on (resets
   and random-action steps on seeds disjoint from evaluation; camera images as rendered), stacked
   into histories, with the same standard-normal noise and the same instruction embeddings, go
   through the torch module and through the exported graph (via the runtime); the max absolute
   difference must be <= ``tol`` (1e-4). A policy reading instructions also has the exported
   text encoder checked against the training side's on those episodes' instructions.
2. Success in sim on the same unseen seeds, per task: the exported policy (``ExportedPolicy``,
   torch-free, embedding instruction strings itself) and the torch module under the same control
   loop, the same noise stream and torch's instruction embeddings (so a gap comes from the
   export alone), plus the torch policy's own ``select_action`` with its own noise draws (the
   spread that sampling alone gives).

The result is written to ``DIR/verify.json`` and printed as a table.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from planners.subgoals import SUBGOAL_KEY, SubGoalObservation
from planners.subgoals.providers import PROVIDERS
from policies.export import manifest as mf
from policies.export.errors import ExportError
from policies.export.exporter import checkpoint_hash, load_checkpoint
from policies.export.runtime import INSTRUCTION_INPUT, NOISE_INPUT, OBS_INPUT, ExportedPolicy
from train.evaluate import evaluate

TOLERANCE = 1e-4
FIDELITY_SEED_START = 900_000  # observation seeds for the numeric check, apart from training and eval seeds


def env_observations(make_env, n: int, steps: int = 30) -> list[tuple[object, str]]:
    """``n`` raw observations (flat vectors or the env's dicts, images included) with their
    episode's instruction: resets plus random-action trajectories of the task."""
    out, seed = [], FIDELITY_SEED_START
    rng = np.random.default_rng(0)
    while len(out) < n:
        env = make_env()
        o, info = env.reset(seed=seed)
        out.append((o, info["instruction"]))
        for _ in range(steps):
            o, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            out.append((o, info["instruction"]))
            if term or trunc:
                break
        env.close()
        seed += 1
    return out[:n]


def observation_histories(exported: ExportedPolicy, make_envs: list, n: int) -> tuple[dict, list[str]]:
    """``n`` histories of consecutive env observations, shared out over the tasks' environments,
    as the graph's inputs ``{name: (n, n_obs_steps, ...)}`` (read through the runtime, so images
    and proprio are taken from the env's dict as on the robot), and each one's instruction."""
    steps = exported.n_obs_steps
    per_task = [n // len(make_envs) + (i < n % len(make_envs)) for i in range(len(make_envs))]
    hists, texts = [], []
    for make_env, k in zip(make_envs, per_task):
        if k == 0:
            continue
        obs = env_observations(make_env, k + steps)
        inputs = [exported.graph_inputs(o)[0] for o, _ in obs]
        for i in range(k):   # consecutive steps, oldest first
            hists.append({name: inputs[i + steps - 1][name] if name in exported.newest_only   # e.g. the sub-goal
                          else np.concatenate([x[name] for x in inputs[i:i + steps]])[None] for name in inputs[0]})
            texts.append(obs[i + steps - 1][1])
    return {name: np.concatenate([h[name] for h in hists]) for name in hists[0]}, texts


def graph_instruction(policy, texts) -> np.ndarray:
    """The instruction input of ``policy``'s export graph for ``texts``, computed the training way:
    the sentence embeddings, or a token-fusion policy's word pieces (zero rows pad; the graph
    rebuilds the mask from them)."""
    emb = policy.embed_instructions(list(texts))
    return (emb[0] if isinstance(emb, tuple) else emb).cpu().numpy()


def fidelity_check(policy, exported: ExportedPolicy, make_envs, n: int = 64) -> dict:
    """Max |torch - exported| over ``n`` observation histories from the tasks' environments, with
    the same noise and (for a policy reading instructions) the same instruction embeddings; and
    the exported text encoder against the training side's on those instructions."""
    spec = policy.export_spec()
    spec.module.eval()
    make_envs = make_envs if isinstance(make_envs, (list, tuple)) else [make_envs]
    inputs, texts = observation_histories(exported, make_envs, n)
    if spec.instruction:
        inputs[INSTRUCTION_INPUT] = graph_instruction(policy, texts)
    rng = np.random.default_rng(1)
    worst, worst_rel = 0.0, 0.0
    for rows in (slice(0, 1), slice(None)):  # batch 1 (the robot's case) and the whole set at once
        feeds = {name: x[rows] for name, x in inputs.items()}
        if spec.noise_shape is not None:
            feeds[NOISE_INPUT] = rng.standard_normal((len(feeds[OBS_INPUT]), *spec.noise_shape), dtype=np.float32)
        with torch.no_grad():
            ref = spec.module(*(torch.from_numpy(feeds[name]) for name in spec.input_names)).numpy()
        out = exported(**feeds)
        worst = max(worst, float(np.abs(out - ref).max()))
        worst_rel = max(worst_rel, float(np.abs(out - ref).max() / (np.abs(ref).max() + 1e-12)))
    result = {"max_abs_diff": worst, "max_rel_diff": worst_rel, "num_inputs": n, "tolerance": TOLERANCE,
              "inputs": list(spec.input_names), "passed": worst <= TOLERANCE}
    if spec.instruction and (exported.language or {}).get("text_encoder"):
        distinct = list(dict.fromkeys(texts))
        diff = float(np.abs(exported.encode_instructions(distinct) - graph_instruction(policy, distinct)).max())
        result["text_encoder"] = {"max_abs_diff": diff, "num_instructions": len(distinct), "passed": diff <= TOLERANCE}
        result["passed"] = result["passed"] and diff <= TOLERANCE
    return result


def _success(ev: dict, seeds: range, wall_s: float) -> dict:
    return {"success_rate": ev["success_rate"], "num_successes": ev["num_successes"],
            "num_episodes": ev["num_episodes"], "seeds": f"{seeds.start}..{seeds.stop - 1}", "wall_s": round(wall_s, 1)}


def _with_subgoals(make_env, provider: str, **kw):
    return SubGoalObservation(make_env(**kw), provider)


def verify_export(export_dir: str | Path, checkpoint: str | Path, episodes: int = 50, seed_start: int = 100_000,
                  threads: int | None = None, progress: bool = True, write: bool = True,
                  subgoals: str = "manual") -> dict:
    """Check the export in ``export_dir`` against the checkpoint it came from (see the module
    docstring); the result dict is also written to ``export_dir/verify.json`` unless ``write`` is off.
    A multitask export is checked on every task it was trained on (``episodes`` per task). A
    policy that reads a sub-goal (GravMAD) gets it from ``SubGoalObservation(env, subgoals)``."""
    export_dir, ckpt = Path(export_dir), Path(checkpoint).resolve()
    exported = ExportedPolicy(export_dir, seed=0, threads=threads)
    m = exported.manifest
    policy = load_checkpoint(ckpt)
    sha, _ = checkpoint_hash(ckpt)
    if sha != m["source"]["sha256"]:
        raise ExportError(f"{export_dir} was exported from a different checkpoint ({m['source']['checkpoint']}, "
                          f"sha256 {m['source']['sha256'][:12]}) than {ckpt} (sha256 {sha[:12]}); pass the "
                          f"checkpoint it came from")
    if threads:
        torch.set_num_threads(threads)
    tasks = m["task"].get("tasks") or [m["task"]["name"]]
    image_size = (m.get("image_processing") or {}).get("image_size")
    run = {"env": tasks, "tasks": tasks, "sim": m["task"]["sim"], "obs_mode": m["obs_mode"],
           "control_mode": m["action"]["control_mode"], "library": m["task"].get("library"), "image_size": image_size}
    make_envs = {task: partial(mf.make_run_env, run, task) for task in tasks}
    reads_subgoal = any(k["name"] == SUBGOAL_KEY for k in m["observation"]["keys"])   # GravMAD
    if reads_subgoal:
        make_envs = {task: partial(_with_subgoals, make, subgoals) for task, make in make_envs.items()}
    result = {"export_dir": str(export_dir), "checkpoint": str(ckpt), "format": m["model"]["format"],
              "task": m["task"]["name"], "tasks": tasks, "sim": run["sim"],
              **({"subgoals": subgoals} if reads_subgoal else {}),
              "fidelity": fidelity_check(policy, exported, list(make_envs.values()))}
    if episodes > 0:
        seeds = range(seed_start, seed_start + episodes)
        spec = policy.export_spec()
        spec.module.eval()

        def torch_graph(feeds):
            with torch.no_grad():
                return spec.module(*(torch.from_numpy(feeds[n]) for n in spec.input_names)).numpy()

        def torch_embed(texts):
            return graph_instruction(policy, texts)

        # same control loop and noise stream as the export: differences come from the graph alone
        torch_same_noise = ExportedPolicy(export_dir, seed=0, graph=torch_graph, embed=torch_embed)
        runs = (("torch", torch_same_noise), ("exported", exported), ("torch_own_sampler", policy))
        for name, pol in runs:
            per_task = {}
            for task, make_env in make_envs.items():
                torch.manual_seed(0)
                t = time.perf_counter()
                per_task[task] = _success(evaluate(pol, make_env, seeds, progress=progress), seeds,
                                          time.perf_counter() - t)
            total = _success({"success_rate": float(np.mean([p["success_rate"] for p in per_task.values()])),
                              "num_successes": sum(p["num_successes"] for p in per_task.values()),
                              "num_episodes": sum(p["num_episodes"] for p in per_task.values())}, seeds,
                             sum(p["wall_s"] for p in per_task.values()))
            result[f"success_{name}"] = {**total, **({"per_task": per_task} if len(tasks) > 1 else {})}
        result["success_gap_points"] = round(100 * (result["success_exported"]["success_rate"]
                                                    - result["success_torch"]["success_rate"]), 1)
    if write:
        (export_dir / "verify.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_result(r: dict) -> None:
    f = r["fidelity"]
    print(f"export      {r['export_dir']} ({r['format']}) from {r['checkpoint']}")
    print(f"fidelity    max |torch - exported| = {f['max_abs_diff']:.2e} over {f['num_inputs']} env observations "
          f"(tolerance {f['tolerance']:.0e}): {'PASS' if f['passed'] else 'FAIL'}")
    if "text_encoder" in f:
        te = f["text_encoder"]
        print(f"text        max |torch - exported| = {te['max_abs_diff']:.2e} over {te['num_instructions']} "
              f"instructions: {'PASS' if te['passed'] else 'FAIL'}")
    if "success_torch" in r:
        t, e = r["success_torch"], r["success_exported"]
        tasks = r.get("tasks") or [r["task"]]
        mean = " (mean over tasks)" if len(tasks) > 1 else ""
        print(f"success{mean}  {', '.join(tasks)} on {r['sim']}, seeds {t['seeds']}:")
        rows = (("torch, same noise", t), ("exported", e),
                ("torch, own sampler", r["success_torch_own_sampler"]))
        for label, x in rows:
            print(f"  {label:<20}{x['success_rate']:.2f} ({x['num_successes']}/{x['num_episodes']})  {x['wall_s']:.0f} s")
        print(f"  gap (exported - torch, same noise) {r['success_gap_points']:+.1f} points; 'own sampler' draws "
              f"different noise (sampling spread)")


def main(argv: list[str] | None = None, prog: str = "python -m train.verify_export") -> int:
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Compare an export with its checkpoint: max abs difference on the "
                                             "same inputs and noise, and success in sim on unseen seeds.")
    ap.add_argument("export_dir")
    ap.add_argument("--checkpoint", required=True, help="the checkpoint directory it was exported from")
    ap.add_argument("--episodes", type=int, default=50, help="sim episodes per policy (0: numeric check only)")
    ap.add_argument("--seed-start", type=int, default=100_000, help="first evaluation seed (unseen in training)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch and onnxruntime")
    ap.add_argument("--subgoals", default="manual", choices=PROVIDERS,
                    help="GravMAD exports: the sub-goal provider the sim episodes run with")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        r = verify_export(a.export_dir, a.checkpoint, episodes=a.episodes, seed_start=a.seed_start, threads=a.threads,
                          subgoals=a.subgoals)
    except (ValueError, FileNotFoundError) as e:  # ExportError, UnknownTaskError, bad manifests
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_result(r)
    return 0 if r["fidelity"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
