"""Sub-goal keypose discovery, replay of stored demos, and the test-time sub-goal providers."""
import gymnasium as gym
import numpy as np
import pytest

import envs
from planners import make_oracle
from planners.oracle import EVENT_KINDS
from planners.subgoals import (EpisodeSignals, KeyposeThresholds, ReplayMismatchError, SubGoal, SubGoalError,
                               candidate_steps, check_subgoal, discover_keyposes, oracle_boundaries,
                               record_oracle_episode, replay_signals, score_keyposes, scored_steps, subgoal_array,
                               subgoal_per_step)
from planners.subgoals.providers import SubGoalTracker, make_provider


def synthetic(T=40, close_at=10, open_at=30, contact=(12, 30), rest=(20, 24)):
    qvel = np.full((T, 7), 0.2)
    qvel[0] = 0.0                      # the arm starts still: not a keypose
    qvel[rest[0]:rest[1]] = 0.0
    cmd = np.ones(T)
    cmd[close_at:open_at] = -1.0
    touch = np.zeros(T, bool)
    touch[contact[0]:contact[1]] = True
    touch[15:17] = False               # chatter inside the touch: bridged
    tcp = np.stack([np.linspace(0.4, 0.6, T), np.zeros(T), np.full(T, 0.1)], 1)
    return EpisodeSignals(tcp_pos=tcp, qvel=qvel, gripper_width=np.full(T, 0.08), gripper_cmd=cmd, contact=touch)


def test_candidates_bridge_contact_chatter_and_debounce_rest():
    c = candidate_steps(synthetic(), KeyposeThresholds(rest_min_steps=2, contact_gap_steps=3))
    assert c == {"gripper": [10, 30], "contact": [12, 30], "rest": [20]}
    # a one-step dip is no rest when two steps are required
    s = synthetic(rest=(20, 21))
    assert candidate_steps(s, KeyposeThresholds(rest_min_steps=2))["rest"] == []


def test_keyposes_merge_signals_and_carry_the_subgoal():
    kps = discover_keyposes(synthetic(), KeyposeThresholds(merge_steps=4))
    assert [k.step for k in kps] == [10, 20, 30, 39]
    assert kps[0].reasons == ("gripper", "contact") and kps[0].gripper_open == 0.0   # close: be here, closed
    assert kps[1].reasons == ("rest",)
    assert kps[2].gripper_open == 1.0 and kps[3].reasons == ("end",)
    np.testing.assert_allclose(kps[0].subgoal.pos, synthetic().tcp_pos[10])
    # each step heads for the first keypose after it
    idx = subgoal_per_step(kps, 40)
    assert idx[0] == 0 and idx[10] == 1 and idx[29] == 2 and idx[39] == 3
    labels = subgoal_array(kps, 40)
    assert labels.shape == (40, 4) and labels.dtype == np.float32
    np.testing.assert_allclose(labels[5], [*kps[0].tcp_pos, 0.0], atol=1e-6)   # heading for the grasp
    np.testing.assert_allclose(labels[10], [*kps[1].tcp_pos, 0.0], atol=1e-6)  # then the rest point, still closed


def test_score_matches_one_to_one_within_tolerance():
    m = score_keyposes([10, 12, 50], [11, 40], tolerance=3)
    assert (m.true_positives, m.predicted, m.reference) == (1, 3, 2)
    assert m.precision == pytest.approx(1 / 3) and m.recall == 0.5


def test_oracle_events_and_discovery_agree_on_stack_blocks():
    env = gym.make("roboforge/stack_blocks-v0")
    signals, actions, ok = record_oracle_episode(env, 0)
    assert ok and {e.kind for e in signals.events} <= set(EVENT_KINDS)
    kinds = [e.kind for e in signals.events]
    assert kinds == ["close", "open"] and signals.events[0].obj == "top"
    kps = discover_keyposes(signals)
    grasp = next(k for k in kps if k.step == signals.events[0].step)
    assert "gripper" in grasp.reasons and grasp.gripper_open == 0.0
    m = score_keyposes(scored_steps(kps, len(signals)), oracle_boundaries(signals), tolerance=3)
    assert m.precision == 1.0 and m.recall == 1.0
    # the oracle's push phases are events too
    push = gym.make("roboforge/push_to_zone-v0")
    psig, _, _ = record_oracle_episode(push, 0)
    assert {"push_start", "push_end"} <= {e.kind for e in psig.events}
    assert psig.contact.any()


def test_replaying_a_stored_demo_recovers_contacts_and_detects_divergence(tmp_path):
    from train.demos import collect_demos

    store = collect_demos("stack_blocks", 1, seed_start=3, store_root=tmp_path, progress=False)
    ep = store.episodes[0]
    env = gym.make("roboforge/stack_blocks-v0")
    replayed = replay_signals(env, ep.seed, ep.actions, ep.proprio, ep.instruction)
    recorded, _, _ = record_oracle_episode(env, ep.seed)
    np.testing.assert_array_equal(replayed.contact, recorded.contact)
    assert [k.step for k in discover_keyposes(replayed)] == [k.step for k in discover_keyposes(recorded)]
    bad = ep.actions.copy()
    bad[5:, 0] = 1.0
    with pytest.raises(ReplayMismatchError, match="diverged from the stored demo at step 6"):
        replay_signals(env, ep.seed, bad, ep.proprio)


def test_check_subgoal_says_why():
    ok = SubGoal(np.array([0.5, 0.0, 0.1]), 1.0, "top")
    assert check_subgoal(ok, ["top", "base"]) is ok
    with pytest.raises(SubGoalError, match="outside the workspace"):
        check_subgoal(SubGoal(np.array([2.0, 0.0, 0.1]), 1.0))
    with pytest.raises(SubGoalError, match="'lamp', which is not in the scene"):
        check_subgoal(SubGoal(np.array([0.5, 0.0, 0.1]), 1.0, "lamp"), ["top", "base"])
    with pytest.raises(SubGoalError, match="gripper_open=2"):
        check_subgoal(SubGoal(np.array([0.5, 0.0, 0.1]), 2))


@pytest.mark.parametrize("task", ["stack_tower", "place_two_in_zone"])
def test_offline_provider_follows_the_manual_one_through_an_oracle_episode(task):
    env = gym.make(envs.env_id(task))
    obs, _ = env.reset(seed=1)
    oracle = make_oracle(env)
    oracle.reset()
    manual, offline = SubGoalTracker(make_provider("manual")), SubGoalTracker(make_provider("offline"))
    manual.reset(env)
    offline.reset(env)
    agree, steps, phases = 0, 0, set()
    while True:
        gm, go = manual.update(), offline.update()
        agree += np.linalg.norm(gm.pos - go.pos) < 0.02 and gm.gripper_open == go.gripper_open
        phases.add((gm.obj, gm.gripper_open))
        steps += 1
        obs, _, term, trunc, info = env.step(oracle.act(obs))
        if term or trunc:
            break
    assert info["success"] and agree / steps > 0.97 and offline.fallbacks == 0
    assert len(phases) == 4  # two objects, each grasped (closed) then released (open)


def test_an_ungroundable_instruction_falls_back_and_is_counted():
    env = gym.make("roboforge/stack_blocks-v0")
    env.reset(seed=0)
    u = env.unwrapped
    missing = next(c for c in ("red", "green", "blue", "yellow") if c not in (u.task.top.color, u.task.base.color))
    u.instruction = f"stack the {missing} block on the {u.task.base.color} block"
    t = SubGoalTracker(make_provider("offline"))
    t.reset(env)
    g = t.update()
    assert t.fallbacks == 2 and f"{missing} block, which is not in the scene" in t.rejections[0]
    np.testing.assert_allclose(g.pos, u.scene_state().tcp_pos)  # nothing before it: hold where the TCP is
    assert g.source == "hold"


def test_unknown_provider_is_a_one_line_error():
    with pytest.raises(ValueError, match="subgoals='gpt' is invalid; allowed: manual, offline, llm"):
        make_provider("gpt")
