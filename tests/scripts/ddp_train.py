"""One process of the 2-process DDP test (tests/test_ddp.py): `accelerate launch --multi_gpu
--num_processes 2 tests/scripts/ddp_train.py OUT STEPS` (torchrun underneath; ``Accelerator(cpu=True)``
makes it gloo on CPU; plain ``--cpu`` would start one process) trains a tiny diffusion policy on a
dataset that records which windows this process drew, then saves what it drew and its weights."""
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import Dataset

from policies.diffusion import DiffusionConfig, DiffusionPolicy
from train.imitation import train_imitation

TINY = dict(obs_dim=6, action_dim=2, n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(32, 64),
            diffusion_step_embed_dim=32, num_inference_steps=5)


class Recording(Dataset):
    def __init__(self, n: int):
        rng = np.random.default_rng(0)
        self.obs = torch.tensor(rng.normal(size=(n, 2, 6)), dtype=torch.float32)
        self.action = torch.tensor(rng.uniform(-1, 1, (n, 8, 2)), dtype=torch.float32)
        self.seen: list[int] = []

    def __len__(self):
        return len(self.obs)

    def __getitem__(self, i):
        self.seen.append(int(i))
        return {"obs": self.obs[i], "action": self.action[i]}


def main(out: Path, steps: int) -> None:
    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY))
    data = Recording(64)
    policy.fit_normalizer(data.obs.reshape(-1, 6).numpy(), data.action.reshape(-1, 2).numpy())
    stats = train_imitation(policy, data, out / "run", steps=steps, batch_size=8, lr=1e-3, warmup_steps=0,
                            checkpoint_every=3, log_every=3, progress=False, accelerator=acc)
    weights = torch.cat([p.detach().flatten() for p in policy.parameters()])
    torch.save({"seen": data.seen, "weights": weights, "stats": stats}, out / f"rank{acc.process_index}_{steps}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
