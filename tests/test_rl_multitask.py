"""One RL policy over several tasks (issue 17's RL learner): SB3 on the task-independent slots
observation, each episode a task drawn by its weight, the curriculum setting the weights."""
import json

import pytest
from policies.common.config import ConfigError
from policies.rl.sb3 import TaskMixture, make_vec_env
from tests.test_train_cli import resume_with, run_cli
from train.config import compose
from train.rl import MixtureWeights

TASKS = ["reach_target", "push_to_zone"]


def test_a_mixture_draws_tasks_by_weight_and_repeats_with_its_seed():
    env = TaskMixture(TASKS, env_kwargs={"obs_mode": "slots"})
    drawn = [env.reset(seed=3 if i == 0 else None)[1]["task"] for i in range(30)]
    assert set(drawn) == set(TASKS)                                  # even weights: both come up
    again = [env.reset(seed=3 if i == 0 else None)[1]["task"] for i in range(30)]
    assert drawn == again
    env.set_task_weights({"push_to_zone": 0.0})
    assert {env.reset()[1]["task"] for _ in range(10)} == {"reach_target"}
    assert env.step(env.action_space.sample())[4]["task"] == "reach_target"
    with pytest.raises(ValueError, match="unknown task 'stack'"):
        env.set_task_weights({"stack": 1.0})
    env.close()
    with pytest.raises(ValueError, match="observation_space.*obs_mode=slots"):
        TaskMixture(["reach_target", "stack_blocks"], env_kwargs={"obs_mode": "state"})


def test_the_curriculum_weights_reach_every_env_copy():
    venv = make_vec_env(TASKS, "mujoco", 2, seed=0, env_kwargs={"obs_mode": "slots"}, vec_env="dummy")
    weights = MixtureWeights(venv, TASKS, venv.action_space.shape[0])
    weights.set_task_weights({"reach_target": 0.0})
    venv.reset()
    assert venv.get_attr("task") == ["push_to_zone", "push_to_zone"]
    assert weights.task_weights == {"reach_target": 0.0, "push_to_zone": 1.0}
    venv.close()


def test_several_tasks_need_slots_and_a_refill_needs_the_imitation_learner():
    with pytest.raises(ConfigError, match="slots for several tasks with policy=sac"):
        compose("policy=sac", "env=[reach_target,push_to_zone]")
    with pytest.raises(ConfigError, match="curriculum.refill"):
        compose("policy=sac", "env=[reach_target,push_to_zone]", "obs_mode=slots", "curriculum=lp",
                "curriculum.refill=true")


@pytest.mark.slow   # ~1 min: two train.py runs (the default suite keeps the fast checks above)
def test_train_py_sac_with_a_curriculum_runs_and_resumes(tmp_path):
    run = tmp_path / "run"
    args = ["policy=sac", "env=[reach_target,push_to_zone]", "obs_mode=slots", "curriculum=lp",
            "policy.total_timesteps=300", "policy.num_envs=2", "policy.vec_env=dummy",
            "policy.sb3.learning_starts=50", "policy.sb3.batch_size=32", "policy.checkpoint_every=0",
            "curriculum.slice_steps=150", "curriculum.eval_every=1", "curriculum.eval_episodes=2",
            "curriculum.random_episodes=2", "eval.episodes=2", "eval.num_videos=0", "progress=false",
            f"hydra.run.dir={run}"]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_task"]) == set(TASKS) and metrics["num_episodes"] == 4
    assert metrics["curriculum"]["name"] == "lp" and metrics["curriculum"]["evaluations"] == 2
    assert (run / "curriculum" / "curriculum.png").exists()
    # a larger budget on the same run: learner and curriculum both go on from their saved state
    res = resume_with(run, **{"policy.total_timesteps": 450})
    assert res.returncode == 0, res.stderr[-3000:]
    state = json.loads((run / "curriculum" / "state.json").read_text())
    assert [h["step"] for h in state["history"]] == [150, 300, 450] and "curriculum resumed" in res.stderr + res.stdout
