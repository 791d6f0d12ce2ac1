"""Sub-goals for GravMAD: keypose discovery in demonstrations (training) and sub-goal providers
(test time: manual from the task's goals, offline from the instruction, llm through ``llm``)."""
from planners.subgoals.keyposes import (Keypose, KeyposeThresholds, Match, candidate_steps, discover_keyposes,
                                        oracle_boundaries, score_keyposes, scored_steps, subgoal_array,
                                        subgoal_per_step)
from planners.subgoals.record import (EpisodeSignals, ReplayMismatchError, manipulated_objects, record_oracle_episode,
                                      replay_signals)
from planners.subgoals.observation import SUBGOAL_KEY, SubGoalObservation
from planners.subgoals.subgoal import SubGoal, SubGoalError, check_subgoal

__all__ = ["EpisodeSignals", "Keypose", "KeyposeThresholds", "Match", "ReplayMismatchError", "SUBGOAL_KEY", "SubGoal", "SubGoalObservation", "SubGoalError",
           "candidate_steps", "check_subgoal", "discover_keyposes", "manipulated_objects", "oracle_boundaries",
           "record_oracle_episode", "replay_signals", "score_keyposes", "scored_steps", "subgoal_array",
           "subgoal_per_step"]
