"""What the encoder configs share: the one-line error, ``from_dict`` with the unknown-key check,
and ``to_dict`` (tuples as lists, for ``config.json``)."""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any


def require(ok: bool, config: Any, name: str, allowed: str) -> None:
    """Raise ``ValueError("Cls.name=value is invalid; allowed: ...")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{type(config).__name__}.{name}={getattr(config, name)!r} is invalid; allowed: {allowed}")


def is_int(value: Any, low: int = 1) -> bool:
    """An int (not a bool) >= ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class EncoderConfig:
    """Mixin for the encoder config dataclasses: dict round trip."""

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of ``to_dict``; an unknown key is an error rather than silently dropped."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {names}")
        return cls(**d)
