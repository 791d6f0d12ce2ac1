"""Benchmarks of roboforge against its peers: ``python -m bench.run`` (see docs/benchmarks.md)."""
