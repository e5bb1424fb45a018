"""The shared Lightning plan for on-policy actor-critic algorithms (PPO, A2C).

One Lightning ``training_step`` is one *iteration*: collect a rollout of ``num_steps`` steps from
``num_envs`` envs, compute GAE, then let the algorithm's :meth:`OnPolicyModule.update` take its
gradient steps (manual optimisation, so the minibatch loop stays inside one step, which is the
cheapest plan, see docs/architecture.md). The train "dataloader" is just the iteration numbers, and
``total_timesteps`` decides how many there are; training stops once they are done whatever
``max_epochs`` says. ``max_steps`` counts optimizer steps, as always in Lightning.

Distributed: every rank builds its own envs in :meth:`setup`, env ``i`` of rank ``r`` seeded
``seed + r * num_envs + i``; ``manual_backward`` all-reduces the gradients, so the parameters
stay identical. ``total_timesteps`` is the budget of the whole run (all ranks together).

Seeding: ``seed`` seeds the envs and the minibatch shuffling. Parameter initialisation and action
sampling use torch's global generator: set ``seed_everything`` (Trainer/CLI) for repeatable runs.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from graphrl.checks import check_in_unit, check_positive
from graphrl.envs.vector import env_seeds, env_spaces, make_vector_env
from graphrl.models.agent import ActorCritic
from graphrl.models.distributions import ActionSpec
from graphrl.rl.evaluation import evaluate_policy
from graphrl.rl.finite import collect_checked
from graphrl.rl.functional import compute_gae, explained_variance
from graphrl.rl.policies import PolicyFactory, static_shapes
from graphrl.rl.recurrent import RecurrentRolloutCollector, SequenceBatch, is_recurrent
from graphrl.rl.rollout import RolloutCollector, Transitions

__all__ = ["OnPolicyModule", "policy_config"]

OptimizerName = Literal["adam", "rmsprop"]

_UNSTORED = "not stored in hparams: "


class OnPolicyModule(LightningModule, ABC):
    """Base LightningModule: envs, rollouts, GAE, optimisation plumbing, logging, evaluation.

    Subclasses implement :meth:`update` and restate only the arguments whose defaults differ
    (PPO: none; A2C: SB3's); the rest reach this class through ``**kwargs``, which the CLI
    resolves against this signature. Defaults are CleanRL's PPO settings.

    Args:
        env_id: Environment id (``graphrl/BoxWorld-...``, ``MiniGrid-...``, a gymnasium id, or
            ``module:EnvId`` for an env your module registers).
        policy: Policy factory ``policy(observation_space, action_space) -> nn.Module``; in YAML
            a ``class_path`` with the policy's own ``init_args``. Default: the relational agent
            :class:`graphrl.models.ActorCritic`.
        env_kwargs: Keyword arguments for every env.
        num_envs: Parallel envs per rank.
        num_steps: Steps per env and rollout.
        total_timesteps: Env steps of the whole run (all ranks); sets the number of iterations.
        gamma: Discount factor.
        gae_lambda: GAE lambda (1.0 = n-step returns).
        norm_adv: Normalise advantages (per minibatch in PPO, per rollout in A2C).
        ent_coef: Entropy bonus coefficient.
        vf_coef: Value loss coefficient.
        max_grad_norm: Global gradient-norm clip (None: no clipping).
        learning_rate: Optimizer learning rate.
        anneal_lr: Decay the learning rate linearly to 0 over the run.
        optimizer: ``adam`` or ``rmsprop`` (alpha 0.99).
        optimizer_eps: Optimizer epsilon.
        seed: Seed of the envs (env ``i`` of rank ``r``: ``seed + r * num_envs + i``) and
            of the minibatch shuffling.
        vector_mode: ``sync`` (envs in this process) or ``async`` (a process per env).
        compile: Run the update's policy forward and backward through ``torch.compile``.
    """

    def __init__(
        self,
        env_id: str,
        policy: PolicyFactory = ActorCritic,
        env_kwargs: dict[str, Any] | None = None,
        num_envs: int = 8,
        num_steps: int = 128,
        total_timesteps: int = 500_000,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        norm_adv: bool = True,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float | None = 0.5,
        learning_rate: float = 2.5e-4,
        anneal_lr: bool = True,
        optimizer: OptimizerName = "adam",
        optimizer_eps: float = 1e-5,
        seed: int = 1,
        vector_mode: Literal["sync", "async"] = "sync",
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not callable(policy):
            hint = (
                "; this checkpoint's policy factory was not a class: pass it again with "
                "load_from_checkpoint(path, policy=...)"
                if isinstance(policy, str) and policy.startswith(_UNSTORED)
                else ""
            )
            raise TypeError(
                "policy must be a factory policy(observation_space, action_space) -> nn.Module, "
                f"got {policy!r}{hint}"
            )
        check_positive(num_envs=num_envs, num_steps=num_steps, total_timesteps=total_timesteps)
        check_positive(learning_rate=learning_rate, optimizer_eps=optimizer_eps)
        check_in_unit(gamma=gamma, gae_lambda=gae_lambda)
        if optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {optimizer!r}")
        if vector_mode not in ("sync", "async"):
            raise ValueError(f"vector_mode must be 'sync' or 'async', got {vector_mode!r}")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")
        self.save_hyperparameters()
        self._make_hparams_loadable(policy)
        self.automatic_optimization = False
        # The parameters must exist before checkpoint loading and configure_optimizers, and their
        # sizes come from the env: read the spaces from one throw-away env. The vector envs (the
        # real resource) are built per rank in setup().
        self.observation_space, self.action_space = env_spaces(env_id, env_kwargs)
        self.action_spec = ActionSpec.from_space(self.action_space, f"env {env_id}: PPO/A2C")
        self.policy = policy(self.observation_space, self.action_space)
        if not isinstance(self.policy, nn.Module):
            raise TypeError(
                f"policy factory returned {type(self.policy).__name__}, expected an nn.Module"
            )
        # The compiled wrapper shares the policy's parameters; kept out of the module tree so
        # that the state dict has one copy of them.
        compiled = torch.compile(self.policy) if compile else None
        object.__setattr__(self, "_compiled_policy", compiled)
        self.collector: RolloutCollector | None = None
        self.iteration = 0
        self.env_steps = 0
        self._shuffle: torch.Generator | None = None
        self._fit_start: tuple[float, int] = (0.0, 0)
        self._recurrent_resume: dict[str, Any] | None = None  # states read from a checkpoint
        self._rollout_to_restore: dict[str, Any] | None = None

    @property
    def samples_seen(self) -> int:
        """Env steps taken by all ranks (what ``metrics.json`` reports as samples seen)."""
        return self.env_steps

    def _make_hparams_loadable(self, policy: PolicyFactory) -> None:
        """Store a class (or ``functools.partial`` of one) policy factory as its config.

        LightningCLI already saves ``{"class_path", "init_args"}``. A factory given in Python
        is rewritten the same way and loaded through Lightning's CLI instantiator, so that
        ``load_from_checkpoint`` works with ``weights_only=True``. Any other callable (a
        lambda, a function) is stored only by name: pass it again to load the checkpoint,
        ``load_from_checkpoint(path, policy=...)``.
        """
        if isinstance(self.hparams.policy, Mapping):
            return
        config = policy_config(policy)
        if config is None:
            self.hparams.policy = f"{_UNSTORED}{policy!r}"
        else:
            self.hparams.policy = config
            self.hparams["_instantiator"] = "lightning.pytorch.cli.instantiate_module"

    # ------------------------------------------------------------------ Lightning hooks

    @property
    def batch_size(self) -> int:
        """Transitions per rank and iteration: ``num_envs * num_steps``."""
        return self.hparams.num_envs * self.hparams.num_steps

    @property
    def num_iterations(self) -> int:
        """Iterations of the whole run: ``total_timesteps // (batch_size * world_size)``."""
        world_size = self.trainer.world_size if self._trainer is not None else 1
        return self.hparams.total_timesteps // (self.batch_size * world_size)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(params [B, P], value [B])`` of the policy for ``obs [B, *obs_shape]``."""
        return self.policy(obs)

    def setup(self, stage: str) -> None:
        if stage != "fit" or self.collector is not None:
            return
        if self.num_iterations < 1:
            world_size = self.trainer.world_size
            raise ValueError(
                f"total_timesteps={self.hparams.total_timesteps} is less than one iteration "
                f"(num_envs * num_steps * world_size = {self.batch_size * world_size}); "
                "raise total_timesteps or lower num_envs/num_steps"
            )
        seeds = env_seeds(self.hparams.seed, self.hparams.num_envs, self.global_rank)
        envs = make_vector_env(
            self.hparams.env_id, seeds, self.hparams.vector_mode, self.hparams.env_kwargs
        )
        collector_cls = RecurrentRolloutCollector if is_recurrent(self.policy) else RolloutCollector
        self.collector = collector_cls(envs, self.hparams.num_steps, seeds)
        if self._recurrent_resume is not None:
            self.collector.load_recurrent_state_dict(self._recurrent_resume)
            self._recurrent_resume = None
        self._shuffle = torch.Generator().manual_seed(self.hparams.seed + self.global_rank)
        if self._rollout_to_restore is not None:
            self._restore_rollout(self._rollout_to_restore)

    def teardown(self, stage: str) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None

    def train_dataloader(self) -> range:
        # A plain iterable (not a DataLoader), so that Lightning adds no DistributedSampler:
        # every rank runs every iteration on its own envs.
        return range(self.iteration, self.num_iterations)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.learning_rate, eps=hp.optimizer_eps)
        else:
            opt = torch.optim.RMSprop(
                self.parameters(), lr=hp.learning_rate, alpha=0.99, eps=hp.optimizer_eps
            )
        if not hp.anneal_lr:
            return opt
        num_iterations = max(self.num_iterations, 1)
        # Linear decay to 0 over the run, stepped once per iteration (as in CleanRL).
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda done: max(1.0 - done / num_iterations, 0.0)
        )
        return [opt], [schedule]

    def on_train_start(self) -> None:
        self._fit_start = (time.perf_counter(), self.env_steps)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["on_policy"] = {"iteration": self.iteration, "env_steps": self.env_steps}
        if isinstance(self.collector, RecurrentRolloutCollector):
            checkpoint["recurrent_collector"] = self.collector.recurrent_state_dict()
        cls = type(self)
        checkpoint["graphrl_module_class"] = f"{cls.__module__}.{cls.__qualname__}"
        if self.collector is not None and self._shuffle is not None:
            # Rank 0's envs and shuffle stream (the checkpoint is written by rank 0 only).
            checkpoint["on_policy"]["rollout"] = {
                "env_spec": self._env_spec(),
                "collector": self.collector.state_dict(),
                "shuffle": self._shuffle.get_state(),
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("on_policy", {})
        self.iteration = state.get("iteration", 0)
        self.env_steps = state.get("env_steps", 0)
        recurrent = checkpoint.get("recurrent_collector")
        if recurrent is not None:  # the envs' policy states at the checkpoint
            if isinstance(self.collector, RecurrentRolloutCollector):
                self.collector.load_recurrent_state_dict(recurrent)
            else:
                self._recurrent_resume = recurrent
        self._rollout_to_restore = state.get("rollout")
        if self.collector is not None and self._rollout_to_restore is not None:
            self._restore_rollout(self._rollout_to_restore)

    def _env_spec(self) -> dict[str, Any]:
        """What the stored envs must match to be restored into this run."""
        hp = self.hparams
        world_size = self.trainer.world_size if self._trainer is not None else 1
        keys = ("env_id", "env_kwargs", "num_envs", "seed", "vector_mode")
        return {**{key: hp[key] for key in keys}, "world_size": world_size}

    def _restore_rollout(self, state: dict[str, Any]) -> None:
        """Continue the saved envs, episodes and shuffle stream, where they fit this run.

        Under DDP (each rank has its own envs, only rank 0's are saved), for async envs, or when
        the env settings changed, the envs restart from their seeds instead (said in one line).
        """
        assert self.collector is not None and self._shuffle is not None
        self._rollout_to_restore = None
        spec = self._env_spec()
        if state["env_spec"] != spec or spec["world_size"] != 1:
            changed = [k for k in spec if state["env_spec"].get(k) != spec[k]] or ["world_size"]
            rank_zero_warn(
                f"resuming with fresh envs (reset with their seeds): the checkpoint's envs "
                f"cannot continue in this run ({', '.join(changed)} differ or > 1 process)"
            )
            return
        self.collector.load_state_dict(state["collector"])
        self._shuffle.set_state(state["shuffle"])
        if state["collector"]["envs"] is None:
            rank_zero_warn(
                "resuming with fresh envs (reset with their seeds): async envs live in other "
                "processes and are not in the checkpoint; use vector_mode=sync for exact resume"
            )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if self.collector is None:
            raise RuntimeError("no envs: the module trains only through Trainer.fit")
        hp = self.hparams
        opt = self.optimizers()
        learning_rate = opt.param_groups[0]["lr"]

        steps_before = self.iteration * hp.num_steps  # each env's, for a NaN's message
        buffer = collect_checked(self.collector, self.policy, self.device, hp.env_id, steps_before)
        advantages, returns = compute_gae(
            buffer.rewards,
            buffer.values,
            buffer.terminations,
            buffer.truncations,
            buffer.final_values,
            buffer.next_value,
            hp.gamma,
            hp.gae_lambda,
        )
        with static_shapes(self.policy, buffer.obs):  # one graph size for the whole update
            metrics = self.update(buffer.transitions(advantages, returns))
        metrics["losses/explained_variance"] = explained_variance(
            buffer.values.flatten(), returns.flatten()
        )
        self.iteration += 1
        self.env_steps += self.batch_size * self.trainer.world_size
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        self._log_iteration(metrics, learning_rate)
        if self.iteration >= self.num_iterations:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ for subclasses

    @abstractmethod
    def update(self, data: Transitions) -> dict[str, Tensor]:
        """Take the algorithm's gradient steps on one rollout.

        Args:
            data: The rollout flattened to ``B = num_steps * num_envs`` transitions.

        Returns:
            Detached scalar metrics keyed by their CleanRL names (``losses/...``).
        """

    def evaluate_actions(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Re-run the policy: ``(logprob [B], entropy [B], value [B])`` of ``actions [B, ...]``."""
        compiled = self._compiled_policy
        params, value = (self.policy if compiled is None else compiled)(obs)
        dist = self.action_spec.distribution(params)
        return dist.log_prob(actions), dist.entropy(), value

    def evaluate_batch(self, batch: Transitions | SequenceBatch) -> tuple[Tensor, Tensor, Tensor]:
        """``(logprob, entropy, value)`` of a batch's actions, shaped like its actions.

        Flat transitions go through :meth:`evaluate_actions`; env sequences (recurrent policies)
        are re-run from their stored initial states with resets at episode starts (BPTT).
        """
        if isinstance(batch, SequenceBatch):
            return batch.evaluate(self.policy, self.action_spec)
        return self.evaluate_actions(batch.obs, batch.actions)

    def optimize(self, loss: Tensor, losses: dict[str, Tensor]) -> None:
        """One optimizer step on ``loss``: backward (all-reduced under DDP), clip, check, step.

        Raises:
            FloatingPointError: if the gradients are not finite. Nothing is updated, so the
                parameters and any checkpoint stay clean; ``losses`` name the culprit.
        """
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.max_grad_norm is not None:
            self.clip_gradients(
                opt, gradient_clip_val=self.hparams.max_grad_norm, gradient_clip_algorithm="norm"
            )
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        # Gradients are identical on every rank after the all-reduce, so all ranks raise together.
        if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            raise FloatingPointError(self._non_finite_message(losses))
        opt.step()

    def _non_finite_message(self, losses: dict[str, Tensor]) -> str:
        bad = [f"{k}={v.item()}" for k, v in losses.items() if not torch.isfinite(v).all()]
        if bad:
            culprit = ", ".join(bad)
        elif self.trainer.world_size > 1:
            culprit = "a loss on another rank (gradients are not finite)"
        else:
            culprit = "gradients are not finite (the losses are)"
        lr = self.optimizers().param_groups[0]["lr"]
        return (
            f"non-finite loss at iteration {self.iteration} (optimizer step "
            f"{self.trainer.global_step}): {culprit}; parameters were not updated. Lower "
            f"--model.init_args.learning_rate (now {lr:g}), or check the env's rewards"
        )

    # ------------------------------------------------------------------ logging

    def _log_iteration(self, metrics: dict[str, Tensor], learning_rate: float) -> None:
        """Log one iteration's scalars against env steps, for every logger and ``metrics.csv``.

        Lightning takes a logged ``step`` as the loggers' step, so TensorBoard, CSV, W&B and
        MLflow all plot against env steps (as CleanRL does) and runs with different
        ``num_envs`` share one axis; Lightning loggers write from rank 0 only. The row is kept
        in :attr:`iteration_metrics` for :class:`~graphrl.callbacks.MetricsCSV`.
        """
        assert self.collector is not None
        episodes = self.collector.episodes.pop()
        # One collective per iteration, on every rank, even with no finished episode.
        sums = torch.tensor(episodes.sums(), dtype=torch.float32, device=self.device)
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        count, return_sum, length_sum, solved_sum, solved_count = sums.tolist()
        start_time, start_steps = self._fit_start
        elapsed = max(time.perf_counter() - start_time, 1e-9)
        logged: dict[str, Tensor | float] = {
            **metrics,
            "charts/learning_rate": learning_rate,
            "charts/SPS": (self.env_steps - start_steps) / elapsed,
            "train/env_steps": torch.tensor(self.env_steps, dtype=torch.float64),
        }
        if count > 0:
            logged["charts/episodic_return"] = return_sum / count
            logged["charts/episodic_length"] = length_sum / count
            self.log("ret", return_sum / count, prog_bar=True, logger=False, batch_size=1)
        if solved_count > 0:
            logged["charts/solve_rate"] = solved_sum / solved_count
            self.log("solve", solved_sum / solved_count, prog_bar=True, logger=False, batch_size=1)
        self.iteration_metrics = self._iteration_row(logged)
        # ``step``: the x-axis of every logger (Lightning pops it from the logged scalars).
        logged["step"] = float(self.env_steps)
        self.log_dict(logged, on_step=True, on_epoch=False, batch_size=1)

    def _iteration_row(self, logged: Mapping[str, Tensor | float]) -> dict[str, float]:
        """``{"env_steps", "iteration", **logged}`` as plain numbers (one ``metrics.csv`` row)."""
        row: dict[str, float] = {"env_steps": self.env_steps, "iteration": self.iteration}
        for key, value in logged.items():
            row[key] = float(value.item() if isinstance(value, Tensor) else value)
        return row

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        env_id: str | None = None,
        episodes: int = 100,
        seed: int = 0,
        greedy: bool = False,
        num_envs: int = 8,
        **env_kwargs: Any,
    ) -> dict[str, float]:
        """Run the policy on fresh envs for ``episodes`` episodes.

        Args:
            env_id: Environment id; the training env (and its ``env_kwargs``, updated with the
                ones given here) by default.
            episodes: Episodes to run.
            seed: Env ``i`` is seeded ``seed + i``.
            greedy: Take the argmax action. By default actions are sampled from the policy, as
                in training, in ``graphrl evaluate`` (``--greedy`` to change) and in the
                published results.
            num_envs: Envs stepped in parallel (at most ``episodes``).
            **env_kwargs: Keyword arguments for the env.

        Returns:
            ``{"solve_rate", "mean_return", "mean_length", "episodes"}``; ``solve_rate`` is NaN
            when the env does not report ``info["solved"]``.
        """
        if env_id is None:
            env_id = self.hparams.env_id
            env_kwargs = {**(self.hparams.env_kwargs or {}), **env_kwargs}
        stats = evaluate_policy(
            self.policy,
            env_id,
            episodes=episodes,
            seed=seed,
            greedy=greedy,
            num_envs=num_envs,
            device=self.device,
            env_kwargs=env_kwargs,
        )
        solved = stats.solved[~np.isnan(stats.solved)]
        return {
            "solve_rate": float(solved.mean()) if solved.size else math.nan,
            "mean_return": float(stats.returns.mean()),
            "mean_length": float(stats.lengths.mean()),
            "episodes": len(stats),
        }


def policy_config(policy: Any) -> dict[str, Any] | None:
    """``{"class_path", "init_args"}`` of a class or keyword partial of one, or None.

    ``init_args`` holds every argument the class takes beyond the ones supplied when it is
    called (those without a default: ``observation_space``, ``action_space``), defaults
    included: loading fills missing arguments from the CLI's default policy, whose same-named
    arguments (``hidden``) would otherwise replace this class's defaults. Dataclass arguments
    (``ProcessorConfig``) are stored as dicts, as a config holds them; arguments that are
    classes or keyword partials of classes (an agent's injected backbone or core) are written
    the same way, so the whole factory is a config.
    """
    given: dict[str, Any] = {}
    if isinstance(policy, functools.partial) and not policy.args:
        given = dict(policy.keywords)
        policy = policy.func
    if not inspect.isclass(policy) or "<locals>" in policy.__qualname__:
        return None
    init_args: dict[str, Any] = {}
    for parameter in inspect.signature(policy).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name not in given and parameter.default is not parameter.empty:
            init_args[parameter.name] = parameter.default
    init_args.update(given)
    for key, value in init_args.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            init_args[key] = dataclasses.asdict(value)
        elif isinstance(value, functools.partial) or inspect.isclass(value):
            nested = policy_config(value)
            if nested is None:
                return None
            init_args[key] = nested
    return {"class_path": f"{policy.__module__}.{policy.__qualname__}", "init_args": init_args}
