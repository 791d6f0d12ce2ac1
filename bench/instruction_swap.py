"""Does a trained policy read its instruction? Swap the roles in stack_blocks' instruction and see
which block it stacks.

    python bench/instruction_swap.py outputs/<run> [--episodes 50] [--seed-start 100000]

For each unseen seed the episode runs twice from the same start: once with the scene's own
instruction ("stack the red block on the blue block") and once with the roles swapped ("stack the
blue block on the red block"). Each run is scored on both stackings: top-on-base (what the scene's
instruction asks) and base-on-top (what the swapped one asks). A policy that ignores the language
stacks the same way under both instructions; one that reads it follows each. A policy with a
``fusion_pointer`` also reports where its readouts point (the named blocks' slots, or the front
camera's patches that show them) under each. ``--pointer-only`` measures just that (fast). The run's own
obs_mode, control mode and image size are used (from its ``config.yaml``). Writes
``bench/results/<--out>.json`` (default ``instruction_swap``) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import envs  # noqa: E402
from bench.common import load, machine, machine_short  # noqa: E402
from envs.core import On  # noqa: E402
from train.config import to_run_config  # noqa: E402
from train.evaluate import rollout  # noqa: E402
from train.imitation import checkpoint_dir  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "instruction_swap.json"
TASK = "stack_blocks"


def stacking_instruction(top, base) -> str:
    """stack_blocks' instruction for moving ``top`` onto ``base`` (its template, either role order)."""
    return f"stack the {top.color} block on the {base.color} block"


class StackingOutcome(gym.Wrapper):
    """stack_blocks with the instruction's roles optionally swapped. ``info["success"]`` is the
    asked-for stacking (top-on-base as given; base-on-top swapped), and the instruction says it."""

    def __init__(self, env, swap: bool):
        super().__init__(env)
        self.swap = swap

    def _judge(self, info):
        task = self.env.unwrapped.task
        top, base = (task.base, task.top) if self.swap else (task.top, task.base)
        state = self.env.unwrapped.scene_state()
        asked = On(top, base).check(state)
        info = dict(info, success=asked, instruction=stacking_instruction(top, base))
        info["conditions"] = {"success": asked}
        return info

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        return obs, self._judge(info)

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        info = self._judge(info)
        return obs, float(info["success"]), bool(info["success"]), trunc, info


def pointer_picks(policy, make_env, seeds: list[int]) -> dict[str, float] | None:
    """A ``fusion_pointer`` policy: on each seed's first observation, how often readout 0 points at
    the block the instruction says to move and readout 1 at the one to stack on, with the scene's
    instruction and with the swapped one (the grounding itself, before any acting). Slots: at the
    block's slot; cameras: at the front camera's patch that shows the block. None without a pointer."""
    if not getattr(policy.config, "fusion_pointer", False):
        return None
    import torch

    from envs.core import observation as ob

    right = {"as given": np.zeros(2), "swapped": np.zeros(2)}
    other = {"as given": np.zeros(2), "swapped": np.zeros(2)}   # at the other named block instead
    env = make_env()
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        task, state = env.unwrapped.task, env.unwrapped.scene_state()
        if policy.config.cameras:   # where the front camera shows top and base: their patch tokens
            slots = np.zeros((1, 1, ob.SLOTS_DIM), np.float32)
            objects = ob.split_slots(slots)[1]
            for k, block in enumerate((task.top, task.base)):
                objects[0, 0, k, ob.SLOT_FIELD_SLICES["present"]] = 1.0
                objects[0, 0, k, ob.SLOT_FIELD_SLICES["pos"]] = state.objects[block.name].pos
        for key, (top, base), want in (("as given", (task.top, task.base), [0, 1]),
                                       ("swapped", (task.base, task.top), [1, 0])):
            policy.reset(instruction=stacking_instruction(top, base))
            with torch.no_grad():
                policy.predict_action_chunk(obs)        # fills the pointer's logits
            want = np.array(want)
            if policy.config.cameras:
                targets = {"slots": torch.from_numpy(slots), "step": torch.zeros(1, dtype=torch.long)}
                want = policy._object_patches({"targets": targets})[0][0, want].numpy()
            picked = policy.fusion.pointer_logits[0, :2].argmax(-1).cpu().numpy()
            right[key] += picked == want
            other[key] += (picked == want[::-1]) & (want[0] != want[1])
    env.close()
    return {**{f"{key}_readout{r}": round(float(v[r]) / len(seeds), 3) for key, v in right.items() for r in (0, 1)},
            **{f"{key}_readout{r}_other": round(float(v[r]) / len(seeds), 3) for key, v in other.items() for r in (0, 1)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a train.py run directory of a stack_blocks policy that reads instructions")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed-start", type=int, default=100_000)
    ap.add_argument("--out", default="instruction_swap",
                    help="result name: bench/results/<out>.json (one file per policy variant)")
    ap.add_argument("--pointer-only", action="store_true",
                    help="only where a pointer policy's readouts point (no episodes are run)")
    a = ap.parse_args()
    results_path = RESULTS.with_name(f"{a.out}.json")
    import policies  # noqa: F401  (registers the policy types)
    from policies.common.policy import Policy

    config = to_run_config(OmegaConf.load(a.run / "config.yaml"))
    policy = Policy.from_pretrained(checkpoint_dir(a.run))
    if not getattr(policy, "reads_instruction", False):
        sys.exit(f"{a.run}'s policy does not read instructions (policy.use_instruction was off): nothing to swap")
    env_kw = {"image_size": policy.config.image_size} if config.obs_mode != "state" else {}
    seeds = list(range(a.seed_start, a.seed_start + a.episodes))
    t0, load_start, rows = time.time(), load(), {"as given": [], "swapped": []}
    for swap in () if a.pointer_only else (False, True):
        def make_env(render_mode=None, swap=swap):
            return StackingOutcome(gym.make(envs.env_id(TASK), sim=config.sim.name, obs_mode=config.obs_mode,
                                            control_mode=config.control_mode, **env_kw), swap)
        results, _, _ = rollout(policy, make_env, seeds, batch_size=50, progress=True, run_seed=config.seed)
        rows["swapped" if swap else "as given"] = results
    asked = {k: sum(r["success"] for r in v) for k, v in rows.items()}
    pointed = pointer_picks(policy, lambda: gym.make(envs.env_id(TASK), sim=config.sim.name, obs_mode=config.obs_mode,
                                                     control_mode=config.control_mode, **env_kw), seeds)
    out = {"benchmark": "instruction swap on stack_blocks: which block does the policy stack?",
           "command": f"python bench/instruction_swap.py {a.run} --episodes {a.episodes} --seed-start {a.seed_start}"
                      + (f" --out {a.out}" if a.out != "instruction_swap" else "") + (" --pointer-only" if a.pointer_only else ""),
           "run": str(a.run), "obs_mode": config.obs_mode,
           # what else could say the goal: the slots' goal fields and their order (see docs/multitask.md)
           "drop_goal_features": getattr(policy.config, "drop_goal_features", False),
           "shuffle_slots": getattr(policy.config, "shuffle_slots", False),
           "obs_encoder": getattr(policy.config, "obs_encoder", "flat"),
           "fusion_pointer": getattr(policy.config, "fusion_pointer", False),
           "fusion_pointer_loss": getattr(policy.config, "fusion_pointer_loss", 0.0), "episodes": a.episodes, "seeds": [seeds[0], seeds[-1]],
           "as_given_success": None if a.pointer_only else asked["as given"],
           "swapped_success": None if a.pointer_only else asked["swapped"],
           # the same seed, both instructions: did the stacking follow the words both times?
           "followed_both": None if a.pointer_only else
           sum(x["success"] and y["success"] for x, y in zip(rows["as given"], rows["swapped"])),
           # with a pointer: the fraction of seeds where each readout points at the object its rank names
           "pointer_right": pointed,
           "wall_s": round(time.time() - t0, 1), "load_avg_1m": [load_start, load()],
           "machine_short": machine_short(machine()), "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(out, indent=2) + "\n")
    n = a.episodes
    if not a.pointer_only:
        print(f"{'instruction':12s} {'asked stacking':>15s}")
        print(f"{'as given':12s} {asked['as given']:>9d}/{n}")
        print(f"{'swapped':12s} {asked['swapped']:>9d}/{n}")
    if pointed:
        print("pointer at the named objects (readout 0: the block to move, 1: the base):",
              ", ".join(f"{k} {v:.2f}" for k, v in pointed.items()))
    if not a.pointer_only:
        print(f"followed the words under both instructions: {out['followed_both']}/{n} seeds")
    print(f"wrote {results_path}")


if __name__ == "__main__":
    main()
