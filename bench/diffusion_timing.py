"""Timing loops shared by the diffusion-policy workers (ours and LeRobot's); needs only torch.

The comparison is fixed here so both sides run the same thing: state-only conditioning on
``OBS_DIM`` = 42 numbers per step (stack_blocks' state vector), ``ACTION_DIM`` = 7 (ee_delta_pose),
n_obs_steps 2, horizon 16, n_action_steps 8, U-Net down_dims (64, 128, 256), kernel 5, 8 groups,
128-d step embedding with FiLM scale+bias, 100 DDPM training timesteps, DDIM with 10 inference
steps, epsilon prediction, batch 64 (``make demo``'s), AdamW lr 1e-4, CPU.

torch runs on ``NUM_THREADS`` = 1 thread by default: on a shared machine, multi-threaded torch
kernels stall whenever a neighbour holds one of their cores (each op waits for its slowest thread),
which made 2-thread figures swing 10x between rounds here; one thread measures the code, not the
neighbours. Rates are given per wall second and per CPU second of the process.
"""
from __future__ import annotations

import statistics
import time

import torch

OBS_DIM, ACTION_DIM = 42, 7
ROBOT_STATE_DIM = 22  # qpos 7, qvel 7, gripper 1, tcp pos 3 + quat 4; the rest is the blocks
N_OBS_STEPS, HORIZON, N_ACTION_STEPS = 2, 16, 8
DOWN_DIMS = (64, 128, 256)
NUM_INFERENCE_STEPS = 10
BATCH = 64
NUM_THREADS = 1


def trainer(loss_fn, params):
    """One training step (forward + backward + AdamW step), warmed up."""
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-6)

    def one():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    for _ in range(3):
        one()
    return one


def train_round(step, steps: int) -> tuple[float, float]:
    """(samples per wall second, samples per CPU second) over ``steps`` training steps."""
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return BATCH * steps / (time.perf_counter() - t), BATCH * steps / (time.process_time() - c)


@torch.no_grad()
def latency_round(predict, calls: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each of ``calls`` calls of ``predict()`` (one DDIM-10 chunk)."""
    wall, cpu = [], []
    for _ in range(calls):
        t, c = time.perf_counter(), time.process_time()
        predict()
        wall.append(1000 * (time.perf_counter() - t))
        cpu.append(1000 * (time.process_time() - c))
    return wall, cpu


def measure(sides: dict, steps: int, rounds: int, calls: int) -> dict:
    """Time every side (name -> (loss_fn, params, predict)) in alternating rounds, so a busy
    neighbour hits all alike; training keeps the best round, latency the median of all calls."""
    train = {k: trainer(loss_fn, params) for k, (loss_fn, params, _) in sides.items()}
    for _, _, predict in sides.values():
        with torch.no_grad():
            for _ in range(3):
                predict()
    rates = {k: [] for k in sides}
    lat = {k: ([], []) for k in sides}
    for _ in range(rounds):
        for k, (_, _, predict) in sides.items():
            rates[k].append(train_round(train[k], steps))
            w, c = latency_round(predict, max(1, calls // rounds))
            lat[k][0].extend(w)
            lat[k][1].extend(c)
    out = {}
    for k in sides:
        out[k] = {"train_samples_per_s": round(max(r[0] for r in rates[k]), 1),
                  "train_samples_per_cpu_s": round(max(r[1] for r in rates[k]), 1),
                  "train_rounds_wall_cpu": [[round(w, 1), round(c, 1)] for w, c in rates[k]],
                  "chunk_latency_ms": round(statistics.median(lat[k][0]), 2),
                  "chunk_latency_cpu_ms": round(statistics.median(lat[k][1]), 2),
                  "chunk_latency_min_ms": round(min(lat[k][0]), 2)}
    return out


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
