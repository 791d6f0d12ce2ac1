"""What every config dataclass shares: the one-line error, ``from_dict`` with the unknown-key check
and the ``config.json`` round trip (:class:`JSONConfig`).

A config dataclass checks its own ranges in ``__post_init__`` with :func:`require`, so a bad value
fails where the config is built (from Python, a ``config.json`` or the Hydra command line) with
one line naming the key, the value and what is allowed::

    DiffusionConfig.horizon=10 is invalid; allowed: a multiple of 2 ** (len(down_dims) - 1) = 4

``train.py`` re-labels the key with the command-line path the user typed (``policy.horizon=10``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value out of its allowed range: ``owner.key=value is invalid; allowed: ...``."""

    def __init__(self, key: str, value: Any, allowed: str, owner: str = ""):
        self.key, self.value, self.allowed, self.owner = key, value, allowed, owner
        super().__init__(self._message())

    @property
    def full_key(self) -> str:
        return f"{self.owner}.{self.key}" if self.owner else self.key

    def _message(self) -> str:
        return f"{self.full_key}={self.value!r} is invalid; allowed: {self.allowed}"

    def within(self, section: str) -> "ConfigError":
        """The same error named by its path in an enclosing config (``train`` + ``steps`` ->
        ``train.steps``), replacing the owner's class name."""
        return type(self)(f"{section}.{self.key}", self.value, self.allowed)


class UnknownConfigKey(ConfigError):
    """A key the config has no field for: a typo, or a file written by another version."""

    def _message(self) -> str:
        return f"unknown key {self.full_key}={self.value!r}; allowed keys: {self.allowed}"


def require(ok: bool, config: Any, key: str, allowed: str) -> None:
    """Raise :class:`ConfigError` for field ``key`` of ``config`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, getattr(config, key), allowed, owner=type(config).__name__)


def is_int(value: Any, low: int = 1) -> bool:
    """``value`` is an int (not a bool) >= ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def field_names(cls: type) -> list[str]:
    """The keys ``cls(**kwargs)`` takes, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """``cls(**data)`` for a config dataclass, refusing a key ``cls`` has no field for (with the
    allowed keys) instead of dropping it: a typo or a file from another version should not
    silently fall back to a default."""
    known = field_names(cls)
    for key, value in data.items():
        if key not in known:
            raise UnknownConfigKey(key, value, ", ".join(known), owner=cls.__name__)
    return cls(**data)


class JSONConfig:
    """Mixin for config dataclasses saved in a ``config.json`` (policies, encoders)."""

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Inverse of ``to_dict``; an unknown key is an error (see :func:`from_dict`)."""
        return from_dict(cls, d)
