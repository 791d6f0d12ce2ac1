"""Does the export behave like the checkpoint? Numerically (same inputs and noise) and in sim.

    python -m train.verify_export DIR --checkpoint CKPT [--episodes 50] [--seed-start 100000]

(``python -m policies.export verify ...`` is the same command under its older name.) Verification
lives in ``train/``, not beside the exporter, because it evaluates policies in sim with
:func:`train.evaluate.evaluate`; imports run one way, from train down to policies.

1. Fidelity: observations from the task's environment (resets and random-action steps on seeds
   disjoint from evaluation), stacked into histories, with the same standard-normal noise, go
   through the torch module and through the exported graph (via the runtime); the max absolute
   difference must be <= ``tol`` (1e-4).
2. Success in sim on the same unseen seeds: the exported policy (``ExportedPolicy``, torch-free)
   and the torch module under the same control loop and the same noise stream (so a gap comes
   from the graph alone), plus the torch policy's own ``select_action`` with its own noise draws (the
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

from policies.export import manifest as mf
from policies.export.errors import ExportError
from policies.export.exporter import checkpoint_hash, load_checkpoint
from policies.export.runtime import ExportedPolicy
from train.evaluate import evaluate

TOLERANCE = 1e-4
FIDELITY_SEED_START = 900_000  # observation seeds for the numeric check, apart from training and eval seeds


def env_observations(make_env, n: int, steps: int = 30) -> np.ndarray:
    """(n, obs_dim) raw state observations: resets plus random-action trajectories of the task."""
    obs, seed = [], FIDELITY_SEED_START
    rng = np.random.default_rng(0)
    while len(obs) < n:
        env = make_env()
        o, _ = env.reset(seed=seed)
        obs.append(o["state"] if isinstance(o, dict) else o)
        for _ in range(steps):
            o, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            obs.append(o["state"] if isinstance(o, dict) else o)
            if term or trunc:
                break
        env.close()
        seed += 1
    return np.asarray(obs[:n], np.float32)


def fidelity_check(policy, exported: ExportedPolicy, make_env, n: int = 64) -> dict:
    spec = policy.export_spec()
    obs = env_observations(make_env, n + spec.n_obs_steps)
    hist = np.stack([obs[i:i + spec.n_obs_steps] for i in range(n)])  # consecutive steps, oldest first
    rng = np.random.default_rng(1)
    worst, worst_rel = 0.0, 0.0
    for batch in (hist[:1], hist):  # batch 1 (the robot's case) and the whole set at once
        xs = [torch.from_numpy(batch)]
        if spec.noise_shape is not None:
            xs.append(torch.from_numpy(rng.standard_normal((len(batch), *spec.noise_shape), dtype=np.float32)))
        with torch.no_grad():
            ref = spec.module(*xs).numpy()
        out = exported(*(x.numpy() for x in xs))
        worst = max(worst, float(np.abs(out - ref).max()))
        worst_rel = max(worst_rel, float(np.abs(out - ref).max() / (np.abs(ref).max() + 1e-12)))
    return {"max_abs_diff": worst, "max_rel_diff": worst_rel, "num_inputs": n, "tolerance": TOLERANCE,
            "passed": worst <= TOLERANCE}


def verify_export(export_dir: str | Path, checkpoint: str | Path, episodes: int = 50, seed_start: int = 100_000,
                  threads: int | None = None, progress: bool = True, write: bool = True) -> dict:
    """Check the export in ``export_dir`` against the checkpoint it came from (see the module
    docstring); the result dict is also written to ``export_dir/verify.json`` unless ``write`` is off."""
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
    run = {"env": m["task"]["name"], "sim": m["task"]["sim"], "obs_mode": m["obs_mode"],
           "control_mode": m["action"]["control_mode"], "library": m["task"].get("library")}
    make_env = partial(mf.make_run_env, run)
    result = {"export_dir": str(export_dir), "checkpoint": str(ckpt), "format": m["model"]["format"],
              "task": run["env"], "sim": run["sim"], "fidelity": fidelity_check(policy, exported, make_env)}
    if episodes > 0:
        seeds = range(seed_start, seed_start + episodes)
        spec = policy.export_spec()

        def torch_graph(feeds):
            with torch.no_grad():
                return spec.module(*(torch.from_numpy(feeds[n]) for n in spec.input_names)).numpy()

        # same control loop and noise stream as the export: differences come from the graph alone
        torch_same_noise = ExportedPolicy(export_dir, seed=0, graph=torch_graph)
        runs = (("torch", torch_same_noise), ("exported", exported), ("torch_own_sampler", policy))
        for name, pol in runs:
            torch.manual_seed(0)
            t = time.perf_counter()
            ev = evaluate(pol, make_env, seeds, progress=progress)
            result[f"success_{name}"] = {"success_rate": ev["success_rate"], "num_successes": ev["num_successes"],
                                         "num_episodes": ev["num_episodes"], "seeds": f"{seed_start}..{seed_start + episodes - 1}",
                                         "wall_s": round(time.perf_counter() - t, 1)}
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
    if "success_torch" in r:
        t, e = r["success_torch"], r["success_exported"]
        print(f"success     {r['task']} on {r['sim']}, seeds {t['seeds']}:")
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
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        r = verify_export(a.export_dir, a.checkpoint, episodes=a.episodes, seed_start=a.seed_start, threads=a.threads)
    except (ValueError, FileNotFoundError) as e:  # ExportError, UnknownTaskError, bad manifests
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_result(r)
    return 0 if r["fidelity"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
