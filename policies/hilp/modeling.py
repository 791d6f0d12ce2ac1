"""HILP (Park et al. 2024): a Hilbert representation phi learned offline, and a policy conditioned
on directions in its latent space, on the common policy surface.

What it learns (each loss a small function below, as in seohongpark/HILP ``hilp_gcrl``):

- ``value_loss``: V(s, g) = -||phi(s) - phi(g)|| fitted to the goal-reaching return (reward -1
  until the goal, 0 and terminal when ``s`` is the goal) with an expectile loss, two phi networks
  with Polyak-averaged target copies;
- ``latent_losses``: for random unit directions z, the intrinsic reward
  r = (phi(s') - phi(s)) . z trains an IQL-style latent value V(s, z), critics Q(s, z, a) and an
  actor pi(a | s, z) by advantage-weighted regression.

How it acts (zero-shot, no fine-tuning):

    policy.set_goal(goal_obs)          # goal reaching: z = (phi(g) - phi(s)) / ||.|| every step
    policy.set_latent(z)               # a fixed direction, e.g. policy.latent_from_rewards(next_obs, r)
    action = policy.select_action(obs)

Observations are the raw env vectors (``slots`` by default); the normalizer lives in the weights
and, with ``drop_goal_features``, the slots' ``has_goal`` / ``goal_delta`` fields are zeroed so phi
describes the scene, not the task that was asked of it.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from policies.common.normalizer import Normalizer
from policies.common.policy import Policy, register_policy
from policies.hilp.configuration import HILPConfig
from policies.hilp.networks import LatentActor, LatentCritic, LatentValue, PhiValue, latent_distance

ADVANTAGE_WEIGHT_CAP = 100.0   # AWR weights exp(temperature * adv) are capped here (as HILP)


def expectile_loss(adv: torch.Tensor, diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric squared error: ``expectile`` weight where adv >= 0, ``1 - expectile`` below."""
    weight = torch.where(adv >= 0, expectile, 1.0 - expectile)
    return (weight * diff ** 2).mean()


def goal_feature_mask(obs_dim: int, drop_goal_features: bool) -> torch.Tensor:
    """(obs_dim,) 1/0: 0 on every slot's ``has_goal`` and ``goal_delta`` when dropping them."""
    if not drop_goal_features:
        return torch.ones(obs_dim)
    from envs.core.observation import slots_goal_mask

    return torch.from_numpy(slots_goal_mask())


def unit(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-6)


@register_policy("hilp")
class HILPPolicy(Policy):
    config_class = HILPConfig

    def __init__(self, config: HILPConfig):
        super().__init__(config)
        c = config
        hidden, d, k, a, ln = c.hidden_dims, c.obs_dim, c.latent_dim, c.action_dim, c.layer_norm
        self.normalizer = Normalizer(d)
        self.register_buffer("obs_mask", goal_feature_mask(d, c.drop_goal_features), persistent=False)
        self.value = PhiValue(d, hidden, k, ln)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)
        self.latent_value = LatentValue(d, k, hidden, ln)
        self.critic = LatentCritic(d, k, a, hidden, ln)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor = LatentActor(d, k, a, hidden, ln)
        self._goal: torch.Tensor | None = None     # raw goal observation(s) for goal reaching
        self._latent: torch.Tensor | None = None   # a fixed unit direction

    # -- representation ----------------------------------------------------------------------
    def fit_normalizer(self, obs: np.ndarray) -> None:
        self.normalizer.fit(obs, min_span=self.config.obs_min_span)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observations (..., obs_dim) -> what every network reads (normalized, goal fields zeroed)."""
        return self.normalizer.normalize(obs) * self.obs_mask

    def phi(self, obs: torch.Tensor) -> torch.Tensor:
        """phi(s) (..., latent_dim) of raw observations (the first phi network, as HILP)."""
        return self.value.phi(self.encode(obs))

    def hilbert_distance(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """||phi(s) - phi(g)|| (...,): ~ the discounted number of steps from s to g, the learned
        temporal distance (-V(s, g))."""
        return latent_distance(self.phi(obs), self.phi(goal))

    def goal_latent(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """z = (phi(g) - phi(s)) / ||phi(g) - phi(s)||: the direction toward the goal."""
        return unit(self.phi(goal) - self.phi(obs))

    @torch.no_grad()
    def latent_from_rewards(self, next_obs, rewards) -> np.ndarray:
        """Reward-prompted z: the least-squares z with phi(s') . z ~ r over labelled samples
        (``next_obs`` (N, obs_dim) raw, ``rewards`` (N,)), normalized to a unit vector."""
        phis = self.phi(self._tensor(next_obs)).double()
        r = torch.as_tensor(np.asarray(rewards), dtype=torch.float64, device=phis.device).reshape(-1, 1)
        z = torch.linalg.lstsq(phis.cpu(), r.cpu()).solution.squeeze(-1)
        return unit(z.float()).numpy()

    # -- acting --------------------------------------------------------------------------------
    def set_goal(self, goal_obs) -> None:
        """Reach ``goal_obs`` (one raw observation (obs_dim,), or (B, obs_dim) for a batch of envs)."""
        self._goal, self._latent = self._tensor(goal_obs), None

    def set_latent(self, z) -> None:
        """Follow a fixed direction z (latent_dim,) (normalized here), e.g. from :meth:`latent_from_rewards`."""
        self._latent, self._goal = unit(self._tensor(z)), None

    @torch.no_grad()
    def select_action(self, obs) -> np.ndarray:
        """(obs_dim,) -> (action_dim,), or a batch; the actor's mean for the current z, in [-1, 1]."""
        if isinstance(obs, dict):
            obs = obs[self.config.obs_key]
        x = self._tensor(obs)
        single = x.ndim == 1
        x = x[None] if single else x
        if self._goal is not None:
            z = self.goal_latent(x, self._goal.expand_as(x) if self._goal.ndim == 1 else self._goal)
        elif self._latent is not None:
            z = self._latent.expand(x.shape[0], -1)
        else:
            raise RuntimeError("HILPPolicy needs a goal or a latent: call set_goal(goal_obs) or set_latent(z) first")
        a = self.actor(self.encode(x), z).mean.clamp(-1.0, 1.0)
        return (a[0] if single else a).cpu().numpy().astype(np.float32)

    def predict_action_chunk(self, obs) -> np.ndarray:
        a = self.select_action(obs)
        return a[None] if a.ndim == 1 else a[:, None]

    def reset(self, noise_seeds=None) -> None:
        """Start of an episode: HILP keeps no history; the goal or latent stays until set again."""

    def _tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.normalizer.scale.device)

    # -- learning (batches hold raw observations; see train/hilp) ---------------------------------
    def value_loss(self, obs, next_obs, goals, success) -> tuple[torch.Tensor, dict]:
        """Expectile regression of V(s, g) onto r + gamma * (1 - success) * min_k V'_k(s', g), r = success - 1."""
        c = self.config
        s, s2, g = self.encode(obs), self.encode(next_obs), self.encode(goals)
        reward, mask = success - 1.0, 1.0 - success
        with torch.no_grad():
            nv1, nv2 = self.target_value(s2, g)
            v1_t, v2_t = self.target_value(s, g)
            adv = reward + c.discount * mask * torch.minimum(nv1, nv2) - (v1_t + v2_t) / 2
            q1, q2 = reward + c.discount * mask * nv1, reward + c.discount * mask * nv2
        v1, v2 = self.value(s, g)
        loss = expectile_loss(adv, q1 - v1, c.expectile) + expectile_loss(adv, q2 - v2, c.expectile)
        return loss, {"value/loss": loss.item(), "value/v_mean": ((v1 + v2) / 2).mean().item(),
                      "value/accept": (adv >= 0).float().mean().item()}

    def latent_losses(self, obs, actions, next_obs, z) -> tuple[torch.Tensor, dict]:
        """The latent policy's IQL losses for directions ``z`` (B, latent_dim), intrinsic reward
        (phi(s') - phi(s)) . z with phi held fixed: expectile V(s, z), TD critics, AWR actor."""
        c = self.config
        s, s2 = self.encode(obs), self.encode(next_obs)
        with torch.no_grad():
            reward = ((self.value.phi(s2) - self.value.phi(s)) * z).sum(-1)
            tq = torch.minimum(*self.target_critic(s, z, actions))
            target = reward + c.skill_discount * self.latent_value(s2, z)   # no terminal: the skill never ends
        v = self.latent_value(s, z)
        value_loss = expectile_loss(tq - v, tq - v, c.skill_expectile)
        q1, q2 = self.critic(s, z, actions)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        with torch.no_grad():
            weight = torch.exp(c.skill_temperature * (tq - v)).clamp(max=ADVANTAGE_WEIGHT_CAP)
        dist = self.actor(s, z)
        log_prob = dist.log_prob(actions).sum(-1)
        actor_loss = -(weight * log_prob).mean()
        total = value_loss + critic_loss + actor_loss
        return total, {"latent/value_loss": value_loss.item(), "latent/critic_loss": critic_loss.item(),
                       "latent/actor_loss": actor_loss.item(), "latent/reward_mean": reward.mean().item(),
                       "latent/action_mse": F.mse_loss(dist.mean, actions).item()}

    def trainable_parameters(self):
        """What the optimizer updates (target copies and the normalizer are not trained)."""
        for module in (self.value, self.latent_value, self.critic, self.actor):
            yield from module.parameters()

    @torch.no_grad()
    def update_targets(self) -> None:
        """Polyak-average the target copies toward the online networks (rate ``tau``)."""
        for online, target in ((self.value, self.target_value), (self.critic, self.target_critic)):
            for p, tp in zip(online.parameters(), target.parameters()):
                tp.lerp_(p, self.config.tau)
