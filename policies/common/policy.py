"""The one policy surface, with the names LeRobot and transformers users know.

    policy = Policy.from_pretrained("outputs/.../checkpoints/last")   # any registered policy type
    policy.reset()                                  # at the start of every episode
    action = policy.select_action(obs)              # one action to apply now (chunk queue inside)
    chunk = policy.predict_action_chunk(obs)        # or the whole predicted chunk at once
    policy.save_pretrained("my_policy")

A saved policy is a directory (the same files as LeRobot's ``save_pretrained``):

- ``config.json``: ``policy_type``, ``format_version`` and every field of the policy's config;
- ``model.safetensors``: the weights, normalizer stats included (they are buffers).

``Policy.from_pretrained(dir)`` reads ``policy_type``, finds the class registered under that name
with ``@register_policy(name)``, builds it from the config and loads the weights.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from envs.core.fileio import atomic_file, write_atomic

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

_POLICIES: dict[str, type["Policy"]] = {}
# Built-in policy types and the module that registers each, so ``from_pretrained`` works without the
# caller importing the right subpackage first.
_BUILTIN_MODULES = {"diffusion": "policies.diffusion.modeling", "rl_mlp": "policies.rl.mlp_policy",
                    "vla": "policies.vla.modeling",
                    "hilp": "policies.hilp.modeling", "gravmad": "policies.gravmad.modeling"}


class CheckpointDamagedError(ValueError):
    """A saved policy's files exist but cannot be read (truncated, overwritten): one line saying which."""


def register_policy(name: str):
    """Class decorator: ``@register_policy("diffusion")`` makes ``Policy.from_pretrained`` able to build the
    class from a ``config.json`` whose ``policy_type`` is ``name``."""
    def deco(cls: type["Policy"]) -> type["Policy"]:
        old = _POLICIES.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"policy type {name!r} is already registered to {old.__module__}.{old.__qualname__}")
        cls.policy_type = name
        _POLICIES[name] = cls
        return cls
    return deco


def _policy_class(kind: str, where: Path) -> type["Policy"]:
    if kind not in _POLICIES and kind in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[kind])
    if kind not in _POLICIES:
        known = sorted(set(_POLICIES) | set(_BUILTIN_MODULES))
        raise ValueError(f"{where}: unknown policy_type {kind!r}; known: {', '.join(known)}")
    return _POLICIES[kind]


class Policy(nn.Module):
    """Base of every policy. Subclasses set ``config_class`` (a dataclass with ``to_dict()`` /
    ``from_dict()``), are decorated with ``@register_policy(name)``, and implement
    ``select_action``, ``predict_action_chunk`` and ``reset``. Stateful policies (observation
    history, action queue) keep that state here, so the caller just steps the environment with
    ``policy.select_action(obs)``.

    Observations are raw (unnormalized): one (obs_dim,) or a batch (B, obs_dim) of B environments
    stepped in lockstep; a dict observation is read through its ``"state"`` entry."""

    policy_type: str = ""
    config_class: type | None = None
    # True for a language-conditioned policy: its reset(instruction=...) takes each episode's
    # instruction (one string, or a list for a lockstep batch); callers check this flag
    reads_instruction: bool = False

    def __init__(self, config):
        super().__init__()
        self.config = config

    # -- acting ----------------------------------------------------------------------------
    def select_action(self, obs: np.ndarray) -> np.ndarray:
        """Observation now (obs_dim,) -> the action (action_dim,) float32 to apply now; a batch
        (B, obs_dim) -> (B, action_dim). Predicts a new chunk only when the queued one is used up."""
        raise NotImplementedError(f"{type(self).__name__} does not implement select_action()")

    def predict_action_chunk(self, obs: np.ndarray) -> np.ndarray:
        """Observation now (obs_dim,) -> the whole predicted chunk (n_action_steps, action_dim)
        float32, first action to apply now; a batch (B, obs_dim) -> (B, n_action_steps, action_dim).
        The observation joins the policy's history; the action queue of ``select_action`` is left
        alone."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_action_chunk()")

    def reset(self, noise_seeds: list[int] | None = None) -> None:
        """Start of an episode: forget the observation history and any queued actions.
        ``noise_seeds`` (one per batch row) seeds a sampling policy's noise per episode;
        deterministic policies ignore it."""

    def export_spec(self):
        """The graph and facts ``python -m policies.export`` needs (a
        :class:`policies.common.export_spec.ExportSpec`). Policy types that can be exported
        implement this; it is the one hook the exporter uses."""
        raise NotImplementedError(f"policy type {self.policy_type!r} cannot be exported yet: "
                                  f"{type(self).__name__} does not implement export_spec()")

    @property
    def device(self) -> torch.device:
        """Device of the weights (and of the normalizer buffers)."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    # -- persistence -----------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write ``path/config.json`` and ``path/model.safetensors`` (directory created if needed)."""
        if not self.policy_type:
            raise TypeError(f"{type(self).__name__} is not registered; decorate it with @register_policy(name)")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {"policy_type": self.policy_type, "format_version": FORMAT_VERSION, **self.config.to_dict()}
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        # each file is replaced whole (the directory may hold other things, e.g. RL's checkpoints/sb3)
        with atomic_file(path / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"policy_type": self.policy_type,
                                                 "format_version": str(FORMAT_VERSION)})
        write_atomic(path / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Policy":
        """Build the policy saved in directory ``path`` (by ``save_pretrained()``), on ``device``, in
        eval mode. Called on ``Policy``, builds whichever registered type the directory holds; called
        on a subclass, also checks that the saved policy is of that class."""
        path = Path(path)
        config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a directory; a saved policy is a directory holding "
                                    f"{CONFIG_FILE} and {WEIGHTS_FILE}, as written by policy.save_pretrained()")
        if not config_file.exists():
            raise FileNotFoundError(f"{path} has no {CONFIG_FILE}; a saved policy is a directory holding "
                                    f"{CONFIG_FILE} and {WEIGHTS_FILE}, as written by policy.save_pretrained()")
        if not weights_file.exists():
            raise FileNotFoundError(f"{path} has no {WEIGHTS_FILE} (the weights); was it saved with policy.save_pretrained()?")
        try:
            config = json.loads(config_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointDamagedError(f"{config_file} is not valid JSON ({err}); the checkpoint is damaged "
                                         f"(truncated or overwritten)") from None
        if not isinstance(config, dict):
            raise CheckpointDamagedError(f"{config_file} holds {type(config).__name__}, not a policy config")
        kind = config.pop("policy_type", None)
        version = config.pop("format_version", None)
        if kind is None:
            raise ValueError(f"{config_file} has no 'policy_type'; was it saved with policy.save_pretrained()?")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{config_file}: format_version {version!r} is not supported by this roboforge "
                             f"(it reads versions <= {FORMAT_VERSION})")
        sub = _policy_class(kind, config_file)
        if not issubclass(sub, cls):
            raise TypeError(f"{path} holds a {kind!r} policy ({sub.__name__}), not a {cls.__name__}")
        policy = sub(sub.config_class.from_dict(config))

        try:
            state = load_file(str(weights_file))
        except Exception as err:  # safetensors raises its own SafetensorsError (or OSError) for bad bytes
            raise CheckpointDamagedError(f"{weights_file} cannot be read ({err}); the checkpoint is damaged "
                                         f"(truncated or overwritten)") from None
        expected = policy.state_dict()
        stats = [k for k in expected if k.endswith(".fitted")]  # one per Normalizer
        if any(k not in state or not bool(state[k]) for k in stats):
            raise ValueError(f"checkpoint {path} has no normalizer stats; was it saved with policy.save_pretrained() "
                             f"after fit_normalizer()?")
        missing, unexpected = set(expected) - set(state), set(state) - set(expected)
        if missing or unexpected:
            raise ValueError(f"checkpoint {path} does not match its {CONFIG_FILE}: missing weights "
                             f"{sorted(missing)[:5]}, unexpected weights {sorted(unexpected)[:5]}")
        policy.load_state_dict(state)
        return policy.to(device).eval()

