"""HDF5 demo store, sequence windows, cached oracle demos, videos."""
import numpy as np
import pytest

from train.datasets.demo_store import CorruptDemoStoreError, DemoStore, Episode
from train.datasets.sequence import SequenceDataset
from train.demos import collect_demos
from train.video import write_mp4


def episodes(n=3, T=10, D=5, A=2):
    rng = np.random.default_rng(0)
    return [Episode(rng.normal(size=(T + i, D)).astype(np.float32), rng.uniform(-1, 1, (T + i, A)).astype(np.float32),
                    np.zeros(T + i, np.float32), seed=i, success=True, instruction=f"do {i}") for i in range(n)]


def test_round_trip_and_atomic_write(tmp_path):
    eps = episodes()
    path = tmp_path / "d.h5"
    DemoStore.write(path, eps, task="t", sim="mujoco")
    assert not list(tmp_path.glob("*.tmp"))
    store = DemoStore.open(path)
    assert len(store) == 3 and store.obs_dim == 5 and store.action_dim == 2
    assert np.array_equal(store.episodes[1].actions, eps[1].actions) and store.episodes[2].instruction == "do 2"
    assert store.meta["task"] == "t" and store.meta["complete"]


def test_truncated_and_garbage_files_are_detected(tmp_path):
    path = tmp_path / "d.h5"
    DemoStore.write(path, episodes(), task="t")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDemoStoreError, match="unreadable"):
        DemoStore.open(path)
    path.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(CorruptDemoStoreError):
        DemoStore.open(path)


def test_nan_episode_is_rejected(tmp_path):
    eps = episodes()
    eps[0].obs[3, 1] = np.nan
    DemoStore.write(tmp_path / "d.h5", eps)
    with pytest.raises(CorruptDemoStoreError, match="NaN"):
        DemoStore.open(tmp_path / "d.h5")


def test_sequence_windows_pad_at_the_edges():
    ep = episodes(1, T=6)[0]
    ds = SequenceDataset([ep], n_obs_steps=2, horizon=4)
    assert len(ds) == 7  # starts -1 .. 5
    first, last = ds[0], ds[len(ds) - 1]
    assert np.array_equal(first["obs"][0], ep.obs[0]) and np.array_equal(first["obs"][1], ep.obs[0])
    assert np.array_equal(first["action"][1], ep.actions[0])
    assert np.array_equal(last["action"][-1], ep.actions[-1]) and first["action"].shape == (4, 2)


def test_collect_demos_caches_and_regenerates_corrupt(tmp_path):
    store = collect_demos("stack_blocks", 2, seed_start=0, store_root=tmp_path, progress=False)
    assert len(store) == 2 and all(e.success for e in store.episodes)
    again = collect_demos("stack_blocks", 2, seed_start=0, store_root=tmp_path, progress=False)
    assert again.path == store.path and np.array_equal(again.episodes[0].actions, store.episodes[0].actions)
    store.path.write_bytes(b"garbage")
    fixed = collect_demos("stack_blocks", 2, seed_start=0, store_root=tmp_path, progress=False)
    assert np.array_equal(fixed.episodes[0].actions, store.episodes[0].actions)  # same seeds, same demos


def test_video_is_h264_and_decodes(tmp_path):
    import imageio_ffmpeg

    frames = [np.full((33, 48, 3), i * 10, np.uint8) for i in range(12)]
    path = write_mp4(frames, tmp_path / "v.mp4", fps=20)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    n = sum(1 for _ in reader)
    assert meta["codec"].startswith("h264") and n == 12 and tuple(meta["size"]) == (48, 34)
