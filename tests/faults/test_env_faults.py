"""An env that raises, dies or returns NaN / inf ends training in one line naming the env id,
the env's index and its env step; the last checkpoint stays loadable; the CLI exits with 1.

Sync and async vector envs alike; ``faulty_env:Faulty-v0`` goes wrong on purpose.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import faulty_env  # noqa: F401  (registers Faulty-v0 here; workers import it by name)
import lightning as L
import numpy as np
import pytest
import torch
import yaml

from graphrl.cli import main
from graphrl.envs.faults import EnvFault
from graphrl.envs.vector import env_seeds, make_vector_env
from graphrl.rl import PPO, MLPPolicy
from graphrl.rl.finite import check_rollout_finite, collect_checked
from graphrl.rl.rollout import RolloutCollector

ENV = "faulty_env:Faulty-v0"
DEBUG = "(rerun with --debug for the traceback)"


def _collect(fault: str, mode: str = "sync", at_step: int = 5, num_steps: int = 8):
    """One rollout of 3 envs (seeds 0, 1, 2; env 1 goes wrong) with an MLP policy."""
    seeds = env_seeds(0, 3)
    kwargs = {"fault": fault, "bad_seed": 1, "at_step": at_step}
    collector = RolloutCollector(make_vector_env(ENV, seeds, mode, kwargs), num_steps, seeds)
    try:
        space = collector.observation_space
        return collector.collect(MLPPolicy(space, 2, hidden=8))
    finally:
        collector.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_env_raising_in_step_is_named_with_its_index_and_env_step(mode: str) -> None:
    with pytest.raises(EnvFault) as fault:
        _collect("raise", mode)
    assert str(fault.value) == (
        f"env 1 of {ENV} raised RuntimeError: sensor failure at env step 5 {DEBUG}"
    )


def test_an_env_raising_in_its_autoreset_names_the_step_before() -> None:
    with pytest.raises(EnvFault) as fault:
        _collect("raise_on_reset")  # episodes end every 4 steps: the reset after step 8
    assert str(fault.value) == (
        f"env 1 of {ENV} raised OSError: camera unplugged on reset after env step 8 {DEBUG}"
    )


@pytest.mark.parametrize(
    ("fault", "how"), [("exit", "exited with status 3"), ("kill", "was killed by SIGKILL")]
)
def test_an_async_worker_that_dies_is_named_with_how_it_ended(fault: str, how: str) -> None:
    with pytest.raises(EnvFault) as error:
        _collect(fault, "async")
    message = str(error.value)
    assert message.startswith(f"env 1 of {ENV} died at env step 5: its worker process (pid ")
    assert message.endswith(f") {how}"), message


@pytest.mark.parametrize(
    ("fault", "what"),
    [("nan_obs", "observation (nan) at env step 5"), ("inf_reward", "reward (inf) at env step 5")],
)
def test_a_non_finite_observation_or_reward_is_named_with_index_and_step(
    fault: str, what: str
) -> None:
    seeds = env_seeds(0, 3)
    kwargs = {"fault": fault, "bad_seed": 1, "at_step": 5}
    collector = RolloutCollector(make_vector_env(ENV, seeds, "sync", kwargs), 8, seeds)
    policy = MLPPolicy(collector.observation_space, 2, hidden=8)
    try:  # a NaN observation makes the policy's sampling fail mid-rollout; still this line
        with pytest.raises(EnvFault) as error:
            collect_checked(collector, policy, "cpu", ENV, steps_before=0)
    finally:
        collector.close()
    assert str(error.value).startswith(f"env 1 of {ENV} returned a non-finite {what}: ")


def test_the_env_step_of_a_non_finite_value_counts_the_earlier_rollouts() -> None:
    buffer = _collect("inf_reward")  # collection itself does not look at the values
    with pytest.raises(EnvFault, match=r"reward \(inf\) at env step 13:"):
        check_rollout_finite(buffer.obs, buffer.rewards, ENV, steps_before=8)
    check_rollout_finite(buffer.obs[:4], buffer.rewards[:4], ENV, 0)  # before it: no error


def test_a_nan_observation_stops_training_before_the_update_touches_the_parameters() -> None:
    module = PPO(
        env_id=ENV,
        env_kwargs={"fault": "nan_obs", "bad_seed": 1, "at_step": 3},
        policy=lambda space, n: MLPPolicy(space, n, hidden=8),
        num_envs=2,
        num_steps=4,
        total_timesteps=64,
        update_epochs=1,
        num_minibatches=1,
        seed=0,  # env i is seeded i: env 1 goes wrong
    )
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    with pytest.raises(EnvFault, match=f"env 1 of {ENV} returned a non-finite observation"):
        trainer.fit(module)
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_cli_prints_one_line_exits_1_and_keeps_the_last_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "seed_everything": 0,
        "model": {
            "class_path": "graphrl.rl.PPO",
            "init_args": {
                "env_id": ENV,
                # env 1 raises at its env step 10: in iteration 3 (4 steps per iteration)
                "env_kwargs": {"fault": "raise", "bad_seed": 1, "at_step": 10},
                "policy": {"class_path": "graphrl.rl.MLPPolicy", "init_args": {"hidden": 8}},
                "num_envs": 2,
                "num_steps": 4,
                "total_timesteps": 80,
                "update_epochs": 1,
                "num_minibatches": 1,
                "seed": 0,  # env i is seeded i: env 1 goes wrong
            },
        },
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": -1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
            "default_root_dir": str(tmp_path / "runs"),
            "callbacks": [
                {"class_path": "graphrl.checkpoints.Checkpoint",
                 "init_args": {"every_n_iterations": 1}},
            ],
        },
    }  # fmt: skip
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(path)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: env 1 of {ENV} raised RuntimeError: sensor failure at env step 10 {DEBUG}"
    ]
    (last,) = (tmp_path / "runs").rglob("last.ckpt")
    assert torch.load(last, weights_only=False)["on_policy"]["iteration"] == 2
    restored = PPO.load_from_checkpoint(last)
    assert restored.iteration == 2 and restored.env_steps == 16


def test_an_async_worker_passes_a_stop_signal_on_to_its_rank_and_keeps_stepping() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    seeds = env_seeds(0, 2)
    envs = make_vector_env(ENV, seeds, "async", {})
    try:
        envs.reset(seed=seeds)
        # From another process, as a scheduler's or `kill`'s (from the rank's own process the
        # signal ends the worker: that is how the vector env terminates its workers)
        subprocess.run(["kill", "-USR1", str(envs.processes[1].pid)], check=True, timeout=60)
        deadline = time.monotonic() + 60  # a hang guard
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert received == [signal.SIGUSR1]
        envs.step(np.zeros(2, dtype=np.int64))  # the worker lives on
        assert all(p.is_alive() for p in envs.processes)
    finally:
        envs.close()
        signal.signal(signal.SIGUSR1, previous)
