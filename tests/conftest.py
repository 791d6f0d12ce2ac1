"""Shared test setup."""
import os

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module: on a small shared CPU, threads fighting other
    processes make tiny models many times slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Demo stores and other caches go to a per-session folder, never the user's ~/.cache/roboforge
    (subprocesses, such as train.py runs, inherit it)."""
    old = os.environ.get("ROBOFORGE_CACHE")
    os.environ["ROBOFORGE_CACHE"] = str(tmp_path_factory.mktemp("roboforge_cache"))
    yield
    if old is None:
        os.environ.pop("ROBOFORGE_CACHE", None)
    else:
        os.environ["ROBOFORGE_CACHE"] = old
