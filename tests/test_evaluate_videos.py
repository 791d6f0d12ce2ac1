"""Evaluation videos: a mix of failures and successes, replayed from the recorded actions, with the
instruction, step and outcome drawn on the frames and a failure's failed conditions at the end."""
from __future__ import annotations

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

import envs
from envs.backends.mujoco.controller import POS_SCALE
from train.evaluate import HOLD_END_S, VIDEO_FPS, choose_video_episodes, evaluate
from train.video import annotate_frame

SEEDS = range(100_000, 100_004)  # with 6 steps, the reacher below fails 100000-100001 and reaches 100002-100003
SIZE = (320, 240)


class Reacher:
    """A batched scripted policy for reach_target: move the TCP along the goal delta (the last
    three state entries) at full speed. Too short an episode leaves far targets unreached."""

    def reset(self, noise_seeds=None):  # deterministic: no sampler noise to seed
        pass

    def select_action(self, obs):
        a = np.zeros((len(obs), 7), np.float32)
        a[:, :3] = np.clip(obs[:, -3:] / POS_SCALE, -1, 1)
        a[:, 6] = 1.0
        return a


def make_env(max_steps=6, **kwargs):
    return gym.make(envs.env_id("reach_target"), max_episode_steps=max_steps, **kwargs)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    out = tmp_path_factory.mktemp("videos")
    ev = evaluate(Reacher(), make_env, SEEDS, video_dir=out, num_videos=2, progress=False, video_size=SIZE)
    return ev, out


def test_choose_video_episodes_mixes_failures_and_successes():
    eps = [{"seed": s, "success": ok} for s, ok in zip(range(10), [1, 1, 1, 0, 1, 1, 0, 1, 0, 1])]
    assert [e["seed"] for e in choose_video_episodes(eps, 4)] == [0, 1, 3, 6]      # 2 + 2, first of each
    assert [e["seed"] for e in choose_video_episodes(eps, 3)] == [0, 3, 6]         # the odd one is a failure
    assert [e["seed"] for e in choose_video_episodes(eps, 8)] == [0, 1, 2, 3, 4, 5, 6, 8]  # 3 failures, 5 successes
    wins = [{"seed": s, "success": True} for s in range(5)]
    assert [e["seed"] for e in choose_video_episodes(wins, 2)] == [0, 1]
    assert choose_video_episodes(eps, 0) == []


def test_videos_are_a_failure_and_a_success_named_by_seed_and_outcome(evaluated):
    ev, out = evaluated
    assert [(e["seed"], e["success"], e["failed"]) for e in ev["episodes"]] == [
        (100000, False, ["reached_target"]), (100001, False, ["reached_target"]), (100002, True, []), (100003, True, [])]
    assert sorted(p.name for p in out.iterdir()) == ["eval_seed100000_fail.mp4", "eval_seed100002_success.mp4"]
    t = ev["eval_timings"]
    assert t["video_frames"] == (6 + 1 + 20) + (4 + 1 + 20) and t["video_s"] > 0 and t["video_ms_per_frame"] > 0


def test_failure_video_ends_on_the_failed_condition_and_the_overlay_is_drawn(evaluated):
    _, out = evaluated
    frames = iio.imread(out / "eval_seed100000_fail.mp4")
    hold = round(HOLD_END_S * VIDEO_FPS)
    assert frames.shape == (6 + 1 + hold, SIZE[1], SIZE[0], 3)  # reset frame, 6 steps, the held last frame
    # the overlay: the reset frame as rendered vs as written (top band darkened, with text)
    env = make_env(render_mode="rgb_array", render_size=SIZE)
    env.reset(seed=100000)
    raw = env.render().astype(int)
    env.close()
    first = frames[0].astype(int)
    assert np.abs(first[:20] - raw[:20]).mean() > 30            # the instruction band changed the pixels
    assert np.abs(first[80:160] - raw[80:160]).mean() < 6       # the scene itself is untouched (codec noise)
    # the failure band (red, above the status line) is on the last frames only
    band = slice(SIZE[1] - 34, SIZE[1] - 20)

    def redness(f):  # red minus green over the band's rows (the table itself is reddish too)
        return float(f[band, :, 0].astype(int).mean() - f[band, :, 1].astype(int).mean())
    assert redness(frames[-1]) > redness(frames[0]) + 30 and redness(frames[-hold]) > redness(frames[0]) + 30
    assert abs(redness(frames[-hold - 2]) - redness(frames[0])) < 10  # the step before the last: still running


def test_annotation_names_failed_conditions():
    frame = np.full((240, 320, 3), 128, np.uint8)
    ok = annotate_frame(frame, "move the gripper to the red sphere", "seed 1   step 3/6")
    failed = annotate_frame(frame, "move the gripper to the red sphere", "seed 1   step 3/6", failed=["reached_target"])
    other = annotate_frame(frame, "move the gripper to the red sphere", "seed 1   step 3/6", failed=["released"])
    assert ok.shape == frame.shape and ok.dtype == np.uint8 and (frame == 128).all()  # the input is not drawn on
    assert not np.array_equal(failed, ok) and not np.array_equal(failed, other)


def test_a_replay_that_differs_is_named_so(tmp_path):
    def drifting_env(render_mode=None, **kw):  # the rendered replay gets a nudged action
        env = make_env(render_mode=render_mode, **kw)
        return gym.wrappers.TransformAction(env, lambda a: np.clip(a + 0.3, -1, 1), env.action_space) if render_mode else env

    ev = evaluate(Reacher(), drifting_env, [100000], video_dir=tmp_path, num_videos=1, progress=False,
                  video_size=(160, 120))
    assert [p.name for p in tmp_path.iterdir()] == ["eval_seed100000_fail_replay-differs.mp4"]
    assert ev["videos"] == [str(tmp_path / "eval_seed100000_fail_replay-differs.mp4")]

