"""The one HDF5 demo store: one file per cache key, written atomically, validated on open.

Layout (format 4)::

    /                      attrs: task, sim, obs_mode, control_mode, image_size (0: no images),
                                  seeds, code_hash, roboforge_version, format_version, created, complete
    /episodes/ep_<seed>/   obs (T, D) float32: the env's flat vector (``state``, or ``slots`` in that
                               mode; in an image mode the Dict's privileged ``state`` entry)
                           final_obs (D,) float32 (the observation after the last action)
                           slots (T, SLOTS_DIM) float32, final_slots (SLOTS_DIM,): the task-independent
                               observation, whatever the store's obs_mode
                           proprio (T, AGENT_DIM) float32: the robot's own part (qpos, qvel, gripper, TCP)
                           actions (T, A) float32, rewards (T,) float32
                           images/<camera>_rgb (T, H, W, 3) uint8, images/<camera>_depth (T, H, W, 1)
                               float16 m (image modes only; gzip, FRAMES_PER_CHUNK frames per chunk)
                           images/pointcloud (T, N, 6) float16: xyz (world, m) + rgb in [0, 1]
                               (obs_mode=pointcloud; gzip, FRAMES_PER_CHUNK steps per chunk)
                           attrs: seed, success, length, instruction, task, sim, obs_mode

Every dataset carries HDF5's fletcher32 checksum (format 4), so changed bytes, compressed or not,
fail the read instead of handing back other values. :meth:`DemoStore.open` reads every vector
dataset (images are read lazily; a damaged image chunk raises :class:`CorruptDemoStoreError` when
read) and checks that what training reads (obs, actions, rewards, final_obs, slots, proprio) is
finite; a store with a bad episode is refused as a whole, naming each bad episode, and
``train.demos.collect_demos`` regenerates it.

Format 2 stores (no slots, proprio, images or per-episode task/sim/obs_mode) still open;
``train.demos.collect_demos`` regenerates them. Images are not loaded by :meth:`DemoStore.open`:
each episode's ``images`` maps a key to a :class:`Frames` view that reads (and decompresses) only
the frames asked for, so a store larger than memory trains at no cost in RAM. ``images`` holds
every per-step sensor array a policy may read, the point cloud included.

Why gzip at 4 frames per chunk, and depth as float16 (``bench/dataset.py`` measures it): gzip is
HDF5's built-in filter (any HDF5 reader opens the store; lzf is h5py's own), a 64 px RGB frame
takes ~16% of its raw 12 KiB and decompresses at ~10,000 frames/s on one shared core, while lzf
stores ~2.7x more bytes for no faster reads; a chunk of a few frames compresses ~1.8x better
than one frame, and a training window reads consecutive frames anyway. float16 depth keeps MuJoCo's far-plane value
(~123 m, past uint16 millimetres' 65.5 m) and 1 mm resolution up to 2 m; float16 point
coordinates keep 0.5 mm up to 1 m from the world origin (the table top lies within it).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import h5py
import numpy as np

from envs.core.fileio import atomic_file

FORMAT_VERSION = 4  # 2: final_obs; 3: slots, proprio, images, per-episode task/sim/obs_mode; 4: checksums
IMAGE_COMPRESSION, IMAGE_COMPRESSION_LEVEL = "gzip", 4
FRAMES_PER_CHUNK = 4


class CorruptDemoStoreError(RuntimeError):
    """The file is truncated, unreadable or inconsistent; regenerate it."""


@dataclass
class Episode:
    obs: np.ndarray       # (T, D)
    actions: np.ndarray   # (T, A)
    rewards: np.ndarray   # (T,)
    seed: int
    success: bool
    instruction: str = ""
    final_obs: np.ndarray | None = None  # (D,): completes the last transition (RL replay buffers)
    task: str = ""
    sim: str = ""
    obs_mode: str = "state"
    slots: np.ndarray | None = None        # (T, SLOTS_DIM); None in format 2 stores
    final_slots: np.ndarray | None = None  # (SLOTS_DIM,)
    proprio: np.ndarray | None = None      # (T, AGENT_DIM)
    # "<camera>_rgb" (T, H, W, 3) uint8, "<camera>_depth" (T, H, W, 1) float32 m, "pointcloud"
    # (T, N, 6) float32: arrays when collected, Frames views (read on indexing) when opened from a store
    images: Mapping[str, np.ndarray | "Frames"] = field(default_factory=dict)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("roboforge")
    except Exception:
        return "unknown"


def write_episode(group: h5py.Group, ep: Episode) -> None:
    """One episode under ``group`` (a file's ``/episodes``) in the format 4 layout."""
    e = group.create_group(f"ep_{ep.seed}")
    e.create_dataset("obs", data=ep.obs.astype(np.float32), compression="lzf", fletcher32=True)
    e.create_dataset("actions", data=ep.actions.astype(np.float32), compression="lzf", fletcher32=True)
    e.create_dataset("rewards", data=ep.rewards.astype(np.float32), fletcher32=True)
    if ep.final_obs is not None:
        e.create_dataset("final_obs", data=np.asarray(ep.final_obs, np.float32), fletcher32=True)
    for name in ("slots", "proprio"):
        if getattr(ep, name) is not None:
            e.create_dataset(name, data=np.asarray(getattr(ep, name), np.float32), compression="lzf",
                             fletcher32=True)
    if ep.final_slots is not None:
        e.create_dataset("final_slots", data=np.asarray(ep.final_slots, np.float32), fletcher32=True)
    for key, frames in ep.images.items():
        frames = np.asarray(frames)
        stored = frames.astype(np.float16) if is_float_sensor(key) else frames.astype(np.uint8)
        e.create_dataset(f"images/{key}", data=stored, chunks=(min(FRAMES_PER_CHUNK, len(stored)), *stored.shape[1:]),
                         compression=IMAGE_COMPRESSION, compression_opts=IMAGE_COMPRESSION_LEVEL, fletcher32=True)
    e.attrs.update(seed=ep.seed, success=bool(ep.success), length=len(ep.actions), instruction=ep.instruction,
                   task=ep.task, sim=ep.sim, obs_mode=ep.obs_mode)


# decompressed-chunk cache per open image dataset: the two chunks a training window can span,
# with room to spare (h5py's 1 MiB default, times two cameras times hundreds of episodes, adds up)
CHUNK_CACHE_BYTES = 256 * 1024


class StoreFile:
    """One read handle on a store file per process: opened on first use, reopened in a
    DataLoader worker (a forked or spawned process must not share the parent's HDF5 handle)."""

    def __init__(self, path: Path):
        self.path, self._pid, self._file = Path(path), None, None

    def get(self) -> h5py.File:
        if self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES), os.getpid()
        return self._file

    def __getstate__(self):  # spawned workers get the path, not the handle
        return {"path": self.path, "_pid": None, "_file": None}


def is_float_sensor(key: str) -> bool:
    """Stored as float16, read back as float32: depth images and point clouds (RGB is uint8)."""
    return key.endswith("_depth") or key == "pointcloud"


class Frames:
    """A lazy (T, ...) view of one episode's stored camera frames or point clouds: ``frames[i]``,
    ``frames[a:b]`` or ``frames[index_array]`` (any order, repeats allowed) reads only the chunks
    holding those steps. RGB comes back uint8, depth (metres) and point clouds float32."""

    def __init__(self, file: StoreFile, name: str, shape: tuple[int, ...], floating: bool):
        self.file, self.name, self.shape, self.floating = file, name, tuple(shape), floating
        self.dtype = np.dtype(np.float32 if floating else np.uint8)
        self._ds, self._ds_file = None, None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self):  # the open dataset stays in its process
        return {**self.__dict__, "_ds": None, "_ds_file": None}

    def _dataset(self) -> h5py.Dataset:
        f = self.file.get()  # kept open: looking a dataset up costs as much as reading a frame
        if self._ds_file is not f:
            self._ds, self._ds_file = f[self.name], f
        return self._ds

    def __getitem__(self, index) -> np.ndarray:
        ds = self._dataset()
        try:
            if isinstance(index, (int, np.integer, slice)):
                out = ds[index]
            else:  # h5py wants increasing, unique indices: read the covering block once, then pick
                index = np.asarray(index, dtype=np.int64)
                lo = int(index.min())
                out = ds[lo:int(index.max()) + 1][index - lo]
        except OSError as err:  # a chunk failed its checksum or does not decompress
            raise CorruptDemoStoreError(f"{self.file.path}: {self.name} is damaged ({err}); delete the file "
                                        f"and the next run regenerates it") from err
        return out.astype(np.float32) if self.floating else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


class DemoStore:
    def __init__(self, path: Path, meta: dict, episodes: list[Episode]):
        self.path, self.meta, self.episodes = Path(path), meta, episodes

    @staticmethod
    def cache_path(root, task: str, sim: str, obs_mode: str, control_mode: str, seeds, code_hash: str,
                   image_size: int | None = None) -> Path:
        """The store's file for this cache key; ``image_size`` (pixels, image modes) is part of it."""
        seeds = list(seeds)
        key = [task, sim, obs_mode, control_mode, seeds[0], seeds[-1], len(seeds), code_hash]
        mode = obs_mode
        if image_size:
            key, mode = key + [int(image_size)], f"{obs_mode}{int(image_size)}"
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]
        return Path(root) / f"{task}_{sim}_{mode}_{control_mode}_n{len(seeds)}_{digest}.h5"

    @staticmethod
    @contextlib.contextmanager
    def writer(path, **meta) -> Iterator["EpisodeSink"]:
        """Stream episodes into a new store (image demos need not fit in memory): ``sink.add(ep)``
        per episode. Atomic: the file appears, complete, only when the block ends without error; a
        crash or an exception leaves the old file or none, never half a file."""
        path = Path(path)
        meta = {**meta, "roboforge_version": _version(), "format_version": FORMAT_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
            for k, v in meta.items():
                f.attrs[k] = v
            sink = EpisodeSink(f.create_group("episodes"))
            yield sink
            f.attrs["seeds"] = sink.seeds  # those of the episodes written, in order
            f.attrs["complete"] = True  # written last: its absence means an interrupted write

    @classmethod
    def write(cls, path, episodes: list[Episode], **meta) -> "DemoStore":
        """Write atomically: a crash leaves either the old file or none, never half a file."""
        with cls.writer(path, **meta) as sink:
            for ep in episodes:
                sink.add(ep)
        return cls.open(path) if any(ep.images for ep in episodes) else cls(path, _read_meta(path), episodes)

    @classmethod
    def open(cls, path) -> "DemoStore":
        path = Path(path)
        file = StoreFile(path)
        try:
            with h5py.File(path, "r") as f:
                if not f.attrs.get("complete", False):
                    raise CorruptDemoStoreError(f"{path}: incomplete (its writer was interrupted)")
                meta = _attrs(f)
                episodes, bad = [], []
                for name, e in f["episodes"].items():
                    try:
                        episodes.append(_read_episode(path, name, e, meta, file))
                    except _BadEpisode as why:
                        bad.append(f"{name} ({why})")
        except (OSError, KeyError, ValueError) as err:  # truncated or garbage bytes
            raise CorruptDemoStoreError(f"{path}: unreadable HDF5 demo store ({err})") from err
        if bad:
            raise CorruptDemoStoreError(f"{path}: {len(bad)} damaged episode(s), none of them used: {'; '.join(bad)}")
        if not episodes:
            raise CorruptDemoStoreError(f"{path}: holds no episodes")
        episodes.sort(key=lambda ep: ep.seed)
        return cls(path, meta, episodes)

    @property
    def obs_dim(self) -> int:
        return self.episodes[0].obs.shape[1]

    @property
    def action_dim(self) -> int:
        return self.episodes[0].actions.shape[1]

    @property
    def format_version(self) -> int:
        return int(self.meta.get("format_version", 1))

    @property
    def image_keys(self) -> tuple[str, ...]:
        """The stored camera images (``front_rgb``, ``wrist_depth``, ...); () without images."""
        return tuple(sorted(self.episodes[0].images))

    def __len__(self) -> int:
        return len(self.episodes)


class EpisodeSink:
    """What :meth:`DemoStore.writer` yields: ``add(episode)`` writes one episode now."""

    def __init__(self, group: h5py.Group):
        self.group, self.seeds = group, []

    def add(self, ep: Episode) -> None:
        write_episode(self.group, ep)
        self.seeds.append(int(ep.seed))


def _attrs(f: h5py.File) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}


def _read_meta(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return _attrs(f)


class _BadEpisode(Exception):
    """One episode failed a checksum, a length or a finiteness check (the message says which)."""


def _read_episode(path: Path, name: str, e: h5py.Group, meta: dict, file: StoreFile) -> Episode:
    try:
        return _read_checked_episode(path, name, e, meta, file)
    except OSError as err:  # h5py's fletcher32 mismatch or a chunk that no longer decompresses
        raise _BadEpisode(f"fails its checksum: {err}") from err
    except (KeyError, ValueError) as err:
        raise _BadEpisode(f"unreadable: {err}") from err


def _read_checked_episode(path: Path, name: str, e: h5py.Group, meta: dict, file: StoreFile) -> Episode:
    def optional(key):
        return e[key][()] if key in e else None

    images = {k: Frames(file, f"episodes/{name}/images/{k}", ds.shape, is_float_sensor(k))
              for k, ds in e.get("images", {}).items()}
    a = e.attrs
    ep = Episode(e["obs"][()], e["actions"][()], e["rewards"][()], int(a["seed"]), bool(a["success"]),
                 str(a.get("instruction", "")), optional("final_obs"),
                 task=str(a.get("task", meta.get("task", ""))), sim=str(a.get("sim", meta.get("sim", ""))),
                 obs_mode=str(a.get("obs_mode", meta.get("obs_mode", "state"))), slots=optional("slots"),
                 final_slots=optional("final_slots"), proprio=optional("proprio"), images=images)
    lengths = [len(ep.obs), len(ep.actions), len(ep.rewards), int(a["length"])]
    lengths += [len(x) for x in (ep.slots, ep.proprio, *images.values()) if x is not None]
    if len(set(lengths)) != 1:
        raise _BadEpisode(f"inconsistent lengths {sorted(set(lengths))}")
    vectors = {"obs": ep.obs, "actions": ep.actions, "rewards": ep.rewards, "final_obs": ep.final_obs,
               "slots": ep.slots, "final_slots": ep.final_slots, "proprio": ep.proprio}
    nonfinite = [k for k, x in vectors.items() if x is not None and not np.isfinite(x).all()]
    if nonfinite:
        raise _BadEpisode(f"NaN/inf in {', '.join(nonfinite)}")
    return ep
