"""Planners: oracle experts derived from task goals."""
from planners.oracle import PickPlaceOracle, make_oracle, oracle_episodes

__all__ = ["PickPlaceOracle", "make_oracle", "oracle_episodes"]
