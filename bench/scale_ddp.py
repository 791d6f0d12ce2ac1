"""One process of bench/scale.py's DDP section: the imitation trainer (``train_imitation``, as
``train.py`` runs it) on the default-size diffusion policy for stack_blocks' state observation,
``STEPS`` optimizer steps at a global batch of ``GLOBAL_BATCH`` windows split over the processes.

    python -m bench.scale_ddp OUT STEPS GLOBAL_BATCH                       # one process
    accelerate launch --multi_gpu --num_processes 2 -m bench.scale_ddp OUT STEPS GLOBAL_BATCH

``Accelerator(cpu=True)`` makes a multi-process launch DDP over gloo on CPU; a plain ``python``
run is one process with the same code. The windows are synthetic (random, the state
observation's and the action's shapes): what a step costs does not depend on their values, and
no demo collection runs inside the timing. Each process writes ``OUT/rank<i>.pt`` (its flattened
weights at the end) and ``OUT/rank<i>.json`` (its training seconds), which bench/scale.py reads.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

WINDOWS = 4096   # distinct training windows: every process draws a different share of each batch


class Windows(Dataset):
    """Random (obs history, action chunk) windows of the policy's shapes."""

    def __init__(self, n: int, n_obs_steps: int, obs_dim: int, horizon: int, action_dim: int):
        rng = np.random.default_rng(0)
        self.obs = torch.tensor(rng.normal(size=(n, n_obs_steps, obs_dim)), dtype=torch.float32)
        self.action = torch.tensor(rng.uniform(-1, 1, (n, horizon, action_dim)), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.obs)

    def __getitem__(self, i: int) -> dict:
        return {"obs": self.obs[i], "action": self.action[i]}


def main(out: Path, steps: int, global_batch: int) -> None:
    import gymnasium as gym
    from accelerate import Accelerator

    import envs
    from policies.diffusion import DiffusionConfig, DiffusionPolicy
    from train.imitation import train_imitation

    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    if global_batch % acc.num_processes:
        raise SystemExit(f"global batch {global_batch} is not a multiple of {acc.num_processes} processes")
    env = gym.make(envs.env_id("stack_blocks"))
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    torch.manual_seed(0)   # the same initial weights in every process (DDP also broadcasts rank 0's)
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=action_dim))
    cfg = policy.config
    data = Windows(WINDOWS, cfg.n_obs_steps, obs_dim, cfg.horizon, action_dim)
    policy.fit_normalizer(data.obs.reshape(-1, obs_dim).numpy(), data.action.reshape(-1, action_dim).numpy())
    acc.wait_for_everyone()   # both processes start the clock together
    t = time.perf_counter()
    stats = train_imitation(policy, data, out / "run", steps=steps, batch_size=global_batch // acc.num_processes,
                            lr=1e-4, warmup_steps=0, checkpoint_every=steps, log_every=steps, progress=False,
                            accelerator=acc)
    train_s = time.perf_counter() - t
    weights = torch.cat([p.detach().flatten() for p in policy.parameters()])
    torch.save(weights, out / f"rank{acc.process_index}.pt")
    (out / f"rank{acc.process_index}.json").write_text(json.dumps(
        {"processes": acc.num_processes, "train_s": train_s, "steps": steps,
         "effective_batch_size": stats["effective_batch_size"], "final_loss": stats["final_loss"]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
