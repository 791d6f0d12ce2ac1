"""Peer workers, each run by the python of its own venv here (``.venv-<peer>``, made by bench.peer_venvs)."""
