"""The task-independent ``slots`` observation (envs.core.observation): one size for every task,
slot k holding the scene's k-th object as the simulator has it, goal deltas equal to the ``state``
vector's, numpy and batched torch built alike, and a clear refusal of scenes with more objects
than slots. Backend parity lives in test_backend_parity.py."""
import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from envs.backends import maniskill
from envs.backends.mujoco.env import MujocoTaskEnv
from envs.core import COLORS, On, Task
from envs.core import observation as ob
from planners import make_oracle

F = ob.SLOT_FIELD_SLICES


def field(objects, k, key):
    return objects[k, F[key]]


def assert_slots_match_scene(obs, env):
    """Every slot against the simulator's scene state and the task's scene spec."""
    u = env.unwrapped
    s, objs = u.scene_state(), u.scene.objects
    agent, objects = ob.split_slots(obs)
    assert objects[:, 0].sum() == len(objs) and not objects[len(objs):].any()
    lay = ob.slots_layout()
    assert np.allclose(agent[lay["tcp_pos"]], s.tcp_pos, atol=1e-6)
    assert agent[lay["gripper_width"]][0] == pytest.approx(s.gripper_width, abs=1e-6)
    for k, o in enumerate(objs):
        st = s.objects[o.name]
        assert field(objects, k, "present")[0] == 1.0
        assert np.allclose(field(objects, k, "pos"), st.pos, atol=1e-6), (o.name, k)
        assert np.allclose(field(objects, k, "quat"), st.quat if st.quat[0] >= 0 else -st.quat, atol=1e-6)
        assert np.allclose(field(objects, k, "rel_pos"), st.pos - s.tcp_pos, atol=1e-6)
        assert np.allclose(field(objects, k, "size"), 2 * np.asarray(o.half_size), atol=1e-7)
        kind = field(objects, k, "kind")
        assert kind.sum() == 1.0 and ob.SLOT_KINDS[int(kind.argmax())] == o.kind
        assert np.allclose(field(objects, k, "rgb"), COLORS[o.color][:3], atol=1e-7)
        assert field(objects, k, "movable")[0] == float(o.movable)


@pytest.mark.parametrize("task", envs.list_tasks())
def test_slots_are_the_scene_and_goal_deltas_are_the_state_ones(task):
    """Along an oracle episode: same size for every task, slots = the simulated scene, the robot
    part and the goal deltas byte-equal to the ``state`` vector's (same seed, same actions)."""
    slots_env, state_env = gym.make(envs.env_id(task), obs_mode="slots"), gym.make(envs.env_id(task))
    assert slots_env.observation_space == gym.spaces.Box(-np.inf, np.inf, (ob.SLOTS_DIM,), np.float32)
    (obs, info), (state, _) = slots_env.reset(seed=3), state_env.reset(seed=3)
    assert info["task"] == task
    u, lay = state_env.unwrapped, state_env.unwrapped.state_layout()
    index = {o.name: k for k, o in enumerate(u.scene.objects)}
    first_goal = {}
    for g, goal in enumerate(u.goals):
        first_goal.setdefault(index[goal.obj.name], g)
    oracle = make_oracle(state_env)
    oracle.reset()
    for step in range(61):
        if step % 20 == 0:
            assert obs.shape == (ob.SLOTS_DIM,) and obs.dtype == np.float32
            assert_slots_match_scene(obs, slots_env)
            agent, objects = ob.split_slots(obs)
            assert np.array_equal(agent, state[:ob.AGENT_DIM])
            for k in range(len(u.scene.objects)):
                has = k in first_goal
                assert field(objects, k, "has_goal")[0] == float(has)
                want = state[lay[f"goal_{first_goal[k]}.delta"]] if has else np.zeros(3, np.float32)
                assert np.array_equal(field(objects, k, "goal_delta"), want), (task, step, k)
        action = oracle.act(state)
        state, *_ = state_env.step(action)
        obs, *_ = slots_env.step(action)


def test_check_env_slots_mujoco():
    for task in ("stack_blocks", "reach_target"):
        check_env(gym.make(envs.env_id(task), obs_mode="slots").unwrapped, skip_render_check=True)


def test_batched_torch_equals_numpy_and_the_first_goal_on_an_object_wins():
    rng = np.random.default_rng(0)
    n, m, g = 3, 5, 3
    arm = [rng.normal(size=(n, d)) for d in (7, 7, 1, 3, 4)]
    pos, quat = rng.normal(size=(n, m, 3)), rng.normal(size=(n, m, 4))
    attrs = rng.normal(size=(n, m, ob.ATTRIBUTE_DIM))
    goal_objects = np.array([[1, 1, 4], [0, 2, 3], [4, 4, 4]])
    deltas = rng.normal(size=(n, g, 3))
    batch = ob.slots_observation(*map(torch.as_tensor, arm), torch.as_tensor(pos), torch.as_tensor(quat),
                                 torch.as_tensor(attrs), torch.as_tensor(goal_objects), torch.as_tensor(deltas))
    assert batch.shape == (n, ob.SLOTS_DIM) and batch.dtype == torch.float32
    for i in range(n):
        one = ob.slots_observation(*(a[i] for a in arm), pos[i], quat[i], attrs[i], goal_objects[i], deltas[i])
        assert one.shape == (ob.SLOTS_DIM,) and one.dtype == np.float32
        assert np.allclose(batch[i].numpy(), one, atol=1e-6)
    _, objects = ob.split_slots(batch.numpy())
    assert np.allclose(objects[0, 1, F["goal_delta"]], deltas[0, 0], atol=1e-6)   # goal 0, not goal 1
    assert objects[2, :, F["has_goal"]].ravel().tolist() == [0, 0, 0, 0, 1] + [0] * (ob.MAX_OBJECTS - 5)
    assert (objects[:, m:] == 0).all() and (objects[:, :m, 0] == 1).all()


class NineBlocks(Task):
    """More objects than the slots observation has room for."""

    name = "nine_blocks"
    instruction = "stack the first block on the second"

    def build(self, scene, rng):
        self.blocks = [scene.add_block("red", size=0.03) for _ in range(ob.MAX_OBJECTS + 1)]
        scene.place_randomly(self.blocks, min_gap=0.01)

    def goals(self):
        return [On(self.blocks[0], self.blocks[1])]


def test_more_objects_than_slots_is_refused_at_build_naming_the_limit():
    MujocoTaskEnv(NineBlocks).reset(seed=0)  # the state observation has no such limit
    with pytest.raises(ob.SlotCapacityError, match=r"'nine_blocks' builds 9 objects.*MAX_OBJECTS=8"):
        MujocoTaskEnv(NineBlocks, obs_mode="slots")
    if maniskill.problem() is None:
        from envs.backends.maniskill.env import ManiSkillTaskEnv

        with pytest.raises(ob.SlotCapacityError, match=r"'nine_blocks' builds 9 objects.*MAX_OBJECTS=8"):
            ManiSkillTaskEnv(NineBlocks, obs_mode="slots")
