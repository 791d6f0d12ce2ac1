"""The image demo pipeline's costs: rendering demos, storing frames, loading training samples.

    python -m bench.dataset [--episodes 3] [--rounds 3] [--seconds 4]

- **Rendering**: stack_blocks oracle demos on MuJoCo in ``obs_mode="rgb"`` at 64 px, front +
  wrist cameras (``train.demos.rollout_oracle``, as ``collect_demos`` runs it): camera frames per
  second and seconds per episode, against the same episodes in ``obs_mode="state"``; and one
  camera frame's render time in the observation cameras' plain look and in the model's full look
  with shadows (the overview camera's; ``bench/rendering.py`` breaks the difference down).
- **Storage**: the rendered frames (RGB of those demos, depth of one ``rgbd`` demo) written as
  HDF5 datasets the way the demo store does, for each compression (none, lzf, gzip levels) and
  chunking (1 or 4 frames), and depth as float16 metres against uint16 millimetres: bytes per
  stored frame, and frames per second read back as training reads them (random two-frame
  windows, each camera) with HDF5's chunk cache off, so every read decompresses (as in a store
  much larger than the cache).
- **Loader**: ``MultiTaskDataset`` over a format 3 store of the rendered episodes, obs keys
  ``front_rgb``, ``wrist_rgb``, ``proprio`` (2 observation steps, 16 actions), batch 64, through a
  DataLoader with 0 and 1 worker processes: samples/s of the loader alone, against the trainer's
  side, the small-CNN image encoder's forward + backward + AdamW step on the same batch size.

torch runs on one thread (as ``bench/encoders.py``: a shared CPU makes multi-threaded kernels wait
for their slowest thread). Rates are the best of alternating rounds. Writes
``bench/results/dataset.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import RESULTS, load, machine, machine_short, versions  # noqa: E402

RESULT = RESULTS / "dataset.json"
TASK, IMAGE_SIZE, BATCH, N_OBS_STEPS, HORIZON = "stack_blocks", 64, 64, 2, 16
OBS_KEYS = ("front_rgb", "wrist_rgb", "proprio")
# (name, kind, dtype, compression, level, frames per chunk); the demo store's choice is marked
STORAGE_CASES = (
    ("rgb raw", "rgb", "uint8", None, None, 1),
    ("rgb lzf, 1 frame/chunk", "rgb", "uint8", "lzf", None, 1),
    ("rgb lzf, 4 frames/chunk", "rgb", "uint8", "lzf", None, 4),
    ("rgb gzip-1, 1 frame/chunk", "rgb", "uint8", "gzip", 1, 1),
    ("rgb gzip-4, 1 frame/chunk", "rgb", "uint8", "gzip", 4, 1),
    ("rgb gzip-4, 4 frames/chunk", "rgb", "uint8", "gzip", 4, 4),
    ("rgb gzip-9, 4 frames/chunk", "rgb", "uint8", "gzip", 9, 4),
    ("depth float16 m, gzip-4, 4 frames/chunk", "depth", "float16", "gzip", 4, 4),
    ("depth uint16 mm, gzip-4, 4 frames/chunk", "depth", "uint16_mm", "gzip", 4, 4),
    ("depth float16 m, lzf, 4 frames/chunk", "depth", "float16", "lzf", None, 4),
)


def cpu_rate(fn, count) -> tuple[float, float, object]:
    """(count per wall second, per CPU second of this process, fn's result)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return count(out) / (time.perf_counter() - t), count(out) / max(time.process_time() - c, 1e-9), out


# -- rendering ---------------------------------------------------------------------------------
def rendering(episodes: int) -> tuple[dict, list]:
    import envs
    from train.demos import rollout_oracle

    rgb = gym.make(envs.env_id(TASK), obs_mode="rgb", image_size=IMAGE_SIZE)
    state = gym.make(envs.env_id(TASK), obs_mode="state")
    rollout_oracle(rgb, 10_000), rollout_oracle(state, 10_000)  # warm-up: GL context, first compile
    seeds = range(episodes)
    t, c = time.perf_counter(), time.process_time()
    eps = [rollout_oracle(rgb, s) for s in seeds]
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    for s in seeds:
        rollout_oracle(state, s)
    state_wall = time.perf_counter() - t
    steps = sum(len(e.actions) for e in eps)
    frames = 2 * (steps + episodes)  # both cameras, every step and the reset
    u = rgb.unwrapped

    def frame_ms(observation: bool, n=20) -> float:
        u._render("front", IMAGE_SIZE, observation=observation)
        t = time.perf_counter()
        for _ in range(n):
            u._render("front", IMAGE_SIZE, observation=observation)
        return 1000 * (time.perf_counter() - t) / n

    plain, full = frame_ms(True), frame_ms(False)
    rgb.close(), state.close()
    return {"task": TASK, "sim": "mujoco", "mujoco_gl": os.environ["MUJOCO_GL"], "image_size": IMAGE_SIZE,
            "cameras": 2, "episodes": episodes, "successes": sum(e.success for e in eps), "steps": steps,
            "frames": frames, "frames_per_s": round(frames / wall, 1), "frames_per_cpu_s": round(frames / cpu, 1),
            "s_per_episode": round(wall / episodes, 2), "state_s_per_episode": round(state_wall / episodes, 3),
            "render_ms_per_frame": round(plain, 1), "render_ms_per_frame_full_look": round(full, 1)}, eps


# -- storage -----------------------------------------------------------------------------------
def camera_frames(rgb_eps) -> dict[str, np.ndarray]:
    """The rendered episodes' RGB frames, and the depth frames of one more episode rendered rgbd."""
    import envs
    from train.demos import rollout_oracle

    env = gym.make(envs.env_id(TASK), obs_mode="rgbd", image_size=IMAGE_SIZE)
    depth = rollout_oracle(env, 0).images
    env.close()
    out = {k: np.concatenate([e.images[k] for e in rgb_eps]) for k in rgb_eps[0].images}
    return {**out, **{k: v for k, v in depth.items() if k.endswith("_depth")}}


def storage(frames: dict[str, np.ndarray], rounds: int, seconds: float, folder: Path) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    files = {}
    for name, kind, dtype, comp, level, chunk in STORAGE_CASES:
        keys = [k for k in frames if k.endswith("_rgb" if kind == "rgb" else "_depth")]
        path = folder / f"{len(files)}.h5"
        with h5py.File(path, "w") as f:
            for k in keys:
                x = frames[k]
                x = np.round(x * 1000).clip(0, 65535).astype(np.uint16) if dtype == "uint16_mm" else x.astype(dtype)
                f.create_dataset(k, data=x, chunks=(chunk, *x.shape[1:]), compression=comp, compression_opts=level)
        with h5py.File(path) as f:
            stored = sum(f[k].id.get_storage_size() for k in keys)
            n = sum(len(f[k]) for k in keys)
            raw = sum(f[k].size * f[k].dtype.itemsize for k in keys)
        files[name] = (path, keys)
        out[name] = {"kind": kind, "dtype": dtype, "compression": comp or "none", "level": level,
                     "frames_per_chunk": chunk, "bytes_per_frame": round(stored / n), "of_raw": round(stored / raw, 3),
                     "chosen": name in ("rgb gzip-4, 4 frames/chunk", "depth float16 m, gzip-4, 4 frames/chunk")}
    reads = {name: [] for name in files}
    for _ in range(rounds):  # alternate the cases: a busy neighbour slows all alike
        for name, (path, keys) in files.items():
            with h5py.File(path, rdcc_nbytes=0) as f:  # no chunk cache: every read decompresses
                ds = [f[k] for k in keys]
                T = len(ds[0])
                n, t = 0, time.perf_counter()
                while time.perf_counter() - t < seconds / len(files):
                    i = int(rng.integers(T - 1))
                    for d in ds:  # a training window: two consecutive frames per camera
                        d[i:i + 2]
                    n += 2 * len(ds)
                reads[name].append(n / (time.perf_counter() - t))
    for name in out:
        out[name]["read_frames_per_s"] = round(max(reads[name]))
        out[name]["rounds_read_frames_per_s"] = [round(r) for r in reads[name]]
    return {"rgb_frames_per_camera": len(frames["front_rgb"]), "depth_frames_per_camera": len(frames["front_depth"]),
            "cases": out}


# -- loader vs trainer -------------------------------------------------------------------------
def loader(eps, rounds: int, batches: int, folder: Path) -> dict:
    from torch.utils.data import DataLoader

    from train.datasets.demo_store import DemoStore
    from train.datasets.multitask import MultiTaskDataset

    store = DemoStore.write(folder / "store.h5", eps, task=TASK, sim="mujoco", obs_mode="rgb",
                            control_mode="ee_delta_pose", image_size=IMAGE_SIZE)
    data = MultiTaskDataset([store], N_OBS_STEPS, HORIZON, obs_keys=OBS_KEYS)
    sampler = data.sampler(num_samples=BATCH * batches, seed=0)
    loaders = {w: DataLoader(data, batch_size=BATCH, sampler=sampler, num_workers=w, persistent_workers=w > 0)
               for w in (0, 1)}
    for dl in loaders.values():
        next(iter(dl))  # start the worker, open the store

    def epoch(dl):
        return sum(len(b["action"]) for b in dl)
    rates = {w: [] for w in loaders}
    for _ in range(rounds):
        for w, dl in loaders.items():
            wall, cpu, _ = cpu_rate(lambda: epoch(dl), lambda n: n)
            rates[w].append((wall, cpu))
    out = {"batch": BATCH, "n_obs_steps": N_OBS_STEPS, "horizon": HORIZON, "obs_keys": list(OBS_KEYS),
           "windows": len(data), "batches_per_round": batches}
    for w, r in rates.items():
        out[f"workers_{w}"] = {"samples_per_s": round(max(x[0] for x in r), 1),
                               "samples_per_cpu_s_main_process": round(max(x[1] for x in r), 1),
                               "rounds_samples_per_s": [round(x[0], 1) for x in r]}
    out["trainer"] = trainer_rate(next(iter(loaders[0])), rounds)
    best = max(out["workers_0"]["samples_per_s"], out["workers_1"]["samples_per_s"])
    out["loader_over_trainer"] = round(best / out["trainer"]["samples_per_s"], 1)
    return out


def trainer_rate(batch: dict, rounds: int) -> dict:
    """The small-CNN image encoder's forward + backward + AdamW step on one loader batch (the last
    observation step of both cameras), the cheapest image trainer there is here."""
    from policies.common.encoders import ImageEncoderConfig, images_from_obs, make_encoder

    enc = make_encoder(ImageEncoderConfig(cameras=("front", "wrist"), image_size=IMAGE_SIZE))
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4)
    images = images_from_obs({k: v[:, -1] for k, v in batch["obs"].items()}, ("front", "wrist"))

    def steps(n=6):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            enc(images).square().mean().backward()
            opt.step()
        return n * BATCH
    steps(1)
    r = [cpu_rate(steps, lambda n: n)[:2] for _ in range(rounds)]
    return {"encoder": "small_cnn", "samples_per_s": round(max(x[0] for x in r), 1),
            "samples_per_cpu_s": round(max(x[1] for x in r), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=3, help="rendered stack_blocks demos (rgb, and rgbd for storage)")
    ap.add_argument("--rounds", type=int, default=3, help="the best (least disturbed) round counts")
    ap.add_argument("--seconds", type=float, default=4.0, help="reading time per storage round, all cases")
    ap.add_argument("--batches", type=int, default=20, help="loader batches per round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_start, t0, m = load(), time.perf_counter(), machine()
    render, eps = rendering(args.episodes)
    print(f"render: {render}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = storage(camera_frames(eps), args.rounds, args.seconds, Path(tmp))
        for name, c in store["cases"].items():
            print(f"{name:42s} {c['bytes_per_frame']:7d} B/frame ({c['of_raw']:.2f} of raw) "
                  f"{c['read_frames_per_s']:7d} frames/s", flush=True)
        load_out = loader(eps, args.rounds, args.batches, Path(tmp))
    print(f"loader: {load_out}")
    result = {"benchmark": "image demos: rendering, storage, loading (MuJoCo, CPU)",
              "command": (f"python -m bench.dataset --episodes {args.episodes} --rounds {args.rounds} "
                          f"--seconds {args.seconds:g} --batches {args.batches}"),
              "threads": 1, "rounds": args.rounds, "rendering": render, "storage": store, "loader": load_out,
              "load_avg_1m_start": load_start, "load_avg_1m_end": load(), "machine": m,
              "machine_short": machine_short(m), "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
              "duration_s": round(time.perf_counter() - t0, 1),
              "versions": versions("mujoco", "h5py", "torch", "numpy")}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average {load_start} -> {result['load_avg_1m_end']} on {m['cores']} cores; wrote {RESULT}")


if __name__ == "__main__":
    main()
