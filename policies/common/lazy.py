"""Lazy package attributes (PEP 562): a package names where each public name lives, and the module
holding it is imported on first use, so light imports (configs, schemas) do not pull in torch."""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_getattr(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """The module-level ``__getattr__`` for ``package``: ``where`` maps a name to its module."""
    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
