"""HDF5 demo store, sequence windows, cached oracle demos, videos."""
import shutil

import gymnasium as gym
import h5py
import numpy as np
import pytest

import envs
from envs.core import observation as ob
from train.datasets.demo_store import CorruptDemoStoreError, DemoStore, Episode
from train.datasets.sequence import MissingObservationError, SequenceDataset
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
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]  # no temporary file left beside it
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


# -- format 3: slots, proprioception, compressed camera frames ---------------------------------
def frames(T, size=32, seed=0):
    """Camera-like frames (flat colours, an edge, a moving square): compressible as renders are."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((T, size, size, 3), np.uint8)
    rgb[:, size // 2:] = (90, 110, 130)
    for t in range(T):
        x = t % (size - 8)
        rgb[t, 4:12, x:x + 8] = rng.integers(0, 255, 3)
    depth = np.broadcast_to(np.linspace(0.5, 2.0, size, dtype=np.float32)[None, :, None, None], (T, size, size, 1))
    return rgb, depth.copy()


def image_episode(seed, T=12, size=32):
    rng = np.random.default_rng(seed)
    rgb, depth = frames(T, size, seed)
    return Episode(rng.normal(size=(T, 9)).astype(np.float32), rng.uniform(-1, 1, (T, 7)).astype(np.float32),
                   np.zeros(T, np.float32), seed=seed, success=True, instruction="stack the red block",
                   final_obs=np.zeros(9, np.float32), task="stack_blocks", sim="mujoco", obs_mode="rgbd",
                   slots=rng.normal(size=(T, ob.SLOTS_DIM)).astype(np.float32),
                   final_slots=np.zeros(ob.SLOTS_DIM, np.float32),
                   proprio=rng.normal(size=(T, ob.AGENT_DIM)).astype(np.float32),
                   images={"front_rgb": rgb, "wrist_rgb": rgb[::-1].copy(), "front_depth": depth, "wrist_depth": depth})


def test_format4_round_trip_with_compressed_images(tmp_path):
    eps = [image_episode(s) for s in (3, 1)]
    store = DemoStore.write(tmp_path / "d.h5", eps, task="stack_blocks", obs_mode="rgbd", image_size=32)
    assert store.format_version == 4 and store.image_keys == ("front_depth", "front_rgb", "wrist_depth", "wrist_rgb")
    got = {ep.seed: ep for ep in DemoStore.open(store.path).episodes}
    for want in eps:
        ep = got[want.seed]
        assert (ep.task, ep.sim, ep.obs_mode) == ("stack_blocks", "mujoco", "rgbd")
        assert ep.instruction == "stack the red block"
        assert np.array_equal(ep.slots, want.slots) and np.array_equal(ep.proprio, want.proprio)
        assert np.array_equal(ep.final_slots, want.final_slots)
        rgb = ep.images["front_rgb"]
        assert rgb.shape == (12, 32, 32, 3) and np.array_equal(np.asarray(rgb), want.images["front_rgb"])
        idx = np.array([5, 2, 2, 9])  # any order, repeats: a clamped window at an episode's edge
        assert rgb[idx].dtype == np.uint8 and np.array_equal(rgb[idx], want.images["front_rgb"][idx])
        depth = ep.images["wrist_depth"][idx]  # stored float16, handed out float32 metres
        assert depth.dtype == np.float32 and np.allclose(depth, want.images["wrist_depth"][idx], atol=1e-3)
    with h5py.File(store.path) as f:
        ds = f["episodes/ep_3/images/front_rgb"]
        assert ds.compression == "gzip" and ds.chunks[0] <= 4
        assert ds.id.get_storage_size() < 0.5 * ds.size * ds.dtype.itemsize  # compressed well below raw


def test_format2_store_opens_and_collect_demos_regenerates_it(tmp_path):
    store = collect_demos("reach_target", 2, store_root=tmp_path, progress=False)
    with h5py.File(store.path, "r+") as f:  # turn it into what roboforge wrote before format 3
        f.attrs["format_version"] = 2
        for name in f["episodes"]:
            for key in ("slots", "final_slots", "proprio"):
                del f[f"episodes/{name}/{key}"]
    old = DemoStore.open(store.path)
    assert old.format_version == 2 and old.episodes[0].slots is None
    with pytest.raises(MissingObservationError, match="format 2"):
        SequenceDataset(old.episodes, 2, 4, obs_keys=("slots",))
    fixed = collect_demos("reach_target", 2, store_root=tmp_path, progress=False)
    assert fixed.path == store.path and fixed.format_version == 4 and fixed.episodes[0].slots is not None


def replay_slots(task, ep, sim="mujoco"):
    """The slots observations a ``slots`` env gives along a stored episode's actions."""
    env = gym.make(envs.env_id(task), sim=sim, obs_mode="slots")
    out = [env.reset(seed=ep.seed)[0]]
    for a in ep.actions:
        out.append(env.step(a)[0])
    env.close()
    return np.array(out)


def test_stored_slots_equal_the_slots_env(tmp_path):
    ep = collect_demos("stack_blocks", 1, store_root=tmp_path, progress=False).episodes[0]
    want = replay_slots("stack_blocks", ep)
    assert ep.slots.shape == (len(ep.actions), ob.SLOTS_DIM)
    assert np.array_equal(ep.slots, want[:-1]) and np.array_equal(ep.final_slots, want[-1])
    assert np.array_equal(ep.proprio, ep.obs[:, :ob.AGENT_DIM])


@pytest.fixture(scope="module")
def rgb_store(tmp_path_factory):
    """Two rendered reach_target demos (both cameras, RGB-D, 32 px): the cheapest rendered task."""
    return collect_demos("reach_target", 2, store_root=tmp_path_factory.mktemp("rgb"), obs_mode="rgbd",
                         image_size=32, progress=False)


def test_rendered_demos_store_images_proprio_and_slots(rgb_store):
    ep = rgb_store.episodes[0]
    T = len(ep.actions)
    assert rgb_store.meta["image_size"] == 32 and rgb_store.image_keys == (
        "front_depth", "front_rgb", "wrist_depth", "wrist_rgb")
    assert ep.images["front_rgb"].shape == (T, 32, 32, 3) and ep.images["front_depth"].shape == (T, 32, 32, 1)
    assert np.asarray(ep.images["wrist_rgb"]).std() > 0  # a real render, not a blank frame
    assert ep.proprio.shape == (T, ob.AGENT_DIM) and ep.obs.shape[1] > ob.AGENT_DIM  # privileged state kept apart
    assert np.array_equal(ep.slots, replay_slots("reach_target", ep)[:-1])  # slots from the oracle's surface
    with h5py.File(rgb_store.path) as f:
        ds = f[f"episodes/ep_{ep.seed}/images/front_rgb"]
        assert ds.id.get_storage_size() < ds.size  # real renders compress (uint8: size = raw bytes)


def test_a_store_without_images_asked_for_images_is_regenerated(tmp_path, caplog):
    state = collect_demos("reach_target", 1, store_root=tmp_path, progress=False)
    rgb = collect_demos("reach_target", 1, store_root=tmp_path, obs_mode="rgb", image_size=32, progress=False)
    # an image store's key also covers how the cameras draw (OBSERVATION_RENDER), a state store's does not
    assert rgb.meta["code_hash"] != state.meta["code_hash"]
    assert rgb.meta["code_hash"][:-8] == state.meta["code_hash"][:-8]   # the same task source hash
    rgb_path = rgb.path
    shutil.copy(state.path, rgb_path)  # a state store where the rgb one belongs, claiming to be rgb
    with h5py.File(rgb_path, "r+") as f:
        f.attrs["obs_mode"] = "rgb"
    with caplog.at_level("WARNING"):
        store = collect_demos("reach_target", 1, store_root=tmp_path, obs_mode="rgb", image_size=32, progress=False)
    assert store.path == rgb_path and "holds images none" in caplog.text
    assert store.image_keys == ("front_rgb", "wrist_rgb")
    assert store.episodes[0].images["front_rgb"].shape[1:] == (32, 32, 3)
    with pytest.raises(MissingObservationError, match="holds no 'front_rgb'.*obs_mode='rgb'"):
        SequenceDataset(state.episodes, 2, 4, obs_keys=("front_rgb",))


def test_collect_demos_refuses_an_obs_mode_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="obs_mode='depth' is invalid.*allowed: state, slots, rgb, rgbd, pointcloud"):
        collect_demos("reach_target", 1, store_root=tmp_path, obs_mode="depth")


def test_pointcloud_demos_store_the_cloud_compressed(tmp_path):
    store = collect_demos("reach_target", 1, store_root=tmp_path, obs_mode="pointcloud", image_size=32,
                          progress=False)
    ep = store.episodes[0]
    T = len(ep.actions)
    assert store.image_keys == ("pointcloud",) and store.meta["image_size"] == 32
    cloud = ep.images["pointcloud"]
    assert cloud.shape == (T, ob.POINTCLOUD_POINTS, 6)
    env = gym.make(envs.env_id("reach_target"), obs_mode="pointcloud", image_size=32)
    want = env.reset(seed=ep.seed)[0]["pointcloud"]
    env.close()
    got = cloud[np.array([0, 0])]              # float16 on disk, float32 out; 0.5 mm steps below 1 m
    assert got.dtype == np.float32 and np.allclose(got[0], want, atol=1e-3)
    with h5py.File(store.path) as f:
        ds = f[f"episodes/ep_{ep.seed}/images/pointcloud"]
        assert ds.dtype == np.float16 and ds.compression == "gzip" and ds.chunks[0] <= 4
    data = SequenceDataset(store.episodes, 2, 4, obs_keys=("pointcloud", "proprio"))
    assert data[0]["obs"]["pointcloud"].shape == (2, ob.POINTCLOUD_POINTS, 6)
    with pytest.raises(MissingObservationError, match="holds no 'front_rgb'"):
        SequenceDataset(store.episodes, 2, 4, obs_keys=("front_rgb",))


def _flip_bytes_inside_chunk(path, dataset: str) -> None:
    """Change two bytes in the middle of the first stored (compressed) chunk of ``dataset``,
    underneath HDF5, as a bad disk or a stray write would."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as raw:
        raw.seek(offset)
        two = raw.read(2)
        raw.seek(offset)
        raw.write(bytes(b ^ 0x5A for b in two))


def test_changed_bytes_in_a_compressed_chunk_fail_the_checksum_and_are_regenerated(tmp_path, caplog):
    store = collect_demos("reach_target", 2, store_root=tmp_path, progress=False)
    first = store.episodes[0]
    _flip_bytes_inside_chunk(store.path, f"episodes/ep_{first.seed}/obs")
    with pytest.raises(CorruptDemoStoreError, match=f"ep_{first.seed} \\(fails its checksum"):
        DemoStore.open(store.path)
    with caplog.at_level("WARNING", logger="train.demos"):
        fixed = collect_demos("reach_target", 2, store_root=tmp_path, progress=False)
    assert "regenerated" in caplog.text and f"ep_{first.seed}" in caplog.text
    assert np.array_equal(fixed.episodes[0].obs, first.obs)  # the same seed again, not the changed bytes


@pytest.mark.parametrize("key", ["rewards", "final_obs", "actions"])
def test_inf_written_into_what_training_reads_is_refused(tmp_path, key):
    eps = episodes()
    for ep in eps:
        ep.final_obs = ep.obs[-1]
    DemoStore.write(tmp_path / "d.h5", eps)
    with h5py.File(tmp_path / "d.h5", "r+") as f:  # through HDF5, so the checksum matches the new value
        ds = f[f"episodes/ep_1/{key}"]
        data = ds[()]
        data.flat[0] = np.inf
        ds[...] = data
    with pytest.raises(CorruptDemoStoreError, match=f"1 damaged episode\\(s\\), none of them used: ep_1 \\(NaN/inf in {key}\\)"):
        DemoStore.open(tmp_path / "d.h5")


def test_a_damaged_image_chunk_raises_when_read(tmp_path):
    store = DemoStore.write(tmp_path / "d.h5", [image_episode(1)], task="stack_blocks", obs_mode="rgbd", image_size=32)
    _flip_bytes_inside_chunk(store.path, "episodes/ep_1/images/front_rgb")
    frames = DemoStore.open(store.path).episodes[0].images["front_rgb"]
    with pytest.raises(CorruptDemoStoreError, match="front_rgb is damaged"):
        frames[0:2]


def test_dart_demos_execute_noise_and_record_the_experts_way_back(tmp_path):
    """data.demo_noise: the oracle's actions run with noise, its clean actions are recorded; the
    store is a different one from the noiseless demos of the same seeds."""
    from train.demos import rollout_oracle

    env = gym.make(envs.env_id("reach_target"))
    plain = rollout_oracle(env, 3)
    noisy = rollout_oracle(env, 3, 0.3, record_clean=True)
    executed = rollout_oracle(env, 3, 0.3)                        # the same noise, the executed actions recorded
    assert not np.allclose(noisy.obs[1:5], plain.obs[1:5])       # the noise was executed: other states
    np.testing.assert_array_equal(noisy.obs, executed.obs)       # the same episode...
    assert np.abs(noisy.actions - executed.actions).mean() > 0.1  # ...labelled with the expert's actions
    # replaying the recorded (clean) labels does not retrace the noisy episode
    env.reset(seed=3)
    for a in noisy.actions[:5]:
        replayed = env.step(a)[0]
    assert not np.allclose(replayed, noisy.obs[5])
    env.close()
    clean_store = collect_demos("reach_target", 2, store_root=tmp_path, progress=False)
    dart_store = collect_demos("reach_target", 2, store_root=tmp_path, progress=False, demo_noise=0.2)
    assert clean_store.path != dart_store.path and len(dart_store) == 2
    with pytest.raises(ValueError, match="demo_noise=-1 is invalid; allowed: a number >= 0"):
        collect_demos("reach_target", 2, store_root=tmp_path, progress=False, demo_noise=-1)


def test_a_noisy_oracle_plans_from_where_the_noise_left_it():
    """DART demos must visit states off the expert's path (centimetres, where a learner drifts),
    and still reach the goal: the noisy oracle re-plans each move from the noisy arm, so its
    clean action is the way on from there. Planning from its own path instead kept the arm
    within ~9 mm of it at this noise (stack_blocks, 20 seeds: median 9.1 mm vs 20.6 mm)."""
    from bench.dart_paths import episode
    from planners.oracle import PickPlaceOracle

    env = gym.make(envs.env_id("stack_blocks"))

    for seed in (0, 1):
        expert = episode(env, PickPlaceOracle, seed, 0.0)[0]
        noisy, _, success = episode(env, PickPlaceOracle, seed, 0.2)
        off_path = np.linalg.norm(noisy[:, None] - expert[None], axis=-1).min(1).max()
        assert success and off_path > 0.014, (seed, success, off_path)
    env.close()
