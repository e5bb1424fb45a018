"""Env faults as one line: which env (id and index), at which env step, and what happened.

Training's vector env (``graphrl.rl.rollout.make_vector_env``) wraps every sub-env in
:class:`EnvGuard` (:func:`guard_env_fns`), which counts the env's steps and turns an exception
from its ``step``/``reset`` into an :class:`EnvFault` naming them. Async vector envs are
:class:`GuardedAsyncVectorEnv`: a worker's exception reaches the main process as that line
(without gymnasium's logged traceback), and a worker process that dies (killed, segfault,
``os._exit``) is named by index, process id and how it ended. Worker processes pass SIGTERM and
SIGUSR1 from outside on to their rank's process, which stops at its next safe point
(:mod:`graphrl.preemption`) while the envs keep running until it closes them.

The CLI prints an ``EnvFault`` alone (``error: env 3 of my_pkg:Sensor-v0 raised RuntimeError:
sensor failure at env step 57 ...``) and exits with status 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector.async_vector_env import AsyncState

from graphrl.errors import RunFailure

__all__ = ["EnvFault", "EnvGuard", "GuardedAsyncVectorEnv", "guard_env_fns"]

_DEBUG_HINT = "(rerun with --debug for the traceback)"
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class EnvFault(RunFailure):
    """An env raised, or its worker process died; the message names the env and the step."""


def _env_name(env_id: str, index: int) -> str:
    return f"env {index} of {env_id}"


class EnvGuard(gym.Wrapper):
    """Counts an env's steps and names it (id, index, step) in any exception it raises.

    Args:
        env: The env to guard.
        env_id: Its id, as the config names it.
        index: Its index in the vector env (``0 .. num_envs - 1`` of this rank).

    Attributes:
        env_steps: Steps this env completed (carried along when the env is pickled into a
            checkpoint and restored).
    """

    def __init__(self, env: gym.Env, env_id: str, index: int) -> None:
        super().__init__(env)
        self.env_id = env_id
        self.index = index
        self.env_steps = 0

    def _fault(self, exc: Exception, when: str) -> EnvFault:
        message = str(exc).strip() or "(no message)"
        return EnvFault(
            f"{_env_name(self.env_id, self.index)} raised {type(exc).__name__}: {message} "
            f"{when} {_DEBUG_HINT}"
        )

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        try:
            result = self.env.step(action)
        except EnvFault:
            raise
        except Exception as exc:
            raise self._fault(exc, f"at env step {self.env_steps + 1}") from exc
        self.env_steps += 1
        return result

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        try:
            return self.env.reset(**kwargs)
        except EnvFault:
            raise
        except Exception as exc:
            raise self._fault(exc, f"on reset after env step {self.env_steps}") from exc


def _guarded(make: Callable[[], gym.Env], env_id: str, index: int) -> gym.Env:
    return EnvGuard(make(), env_id, index)


def guard_env_fns(env_fns: Sequence[Callable[[], gym.Env]], env_id: str) -> list[Callable]:
    """The env constructors of a vector env, each wrapping its env in :class:`EnvGuard`.

    Args:
        env_fns: One constructor per sub-env, in index order.
        env_id: The envs' id (for the messages).
    """
    return [functools.partial(_guarded, fn, env_id, i) for i, fn in enumerate(env_fns)]


# ---------------------------------------------------------------------------- async workers


def _relay_stop_signals(rank_pid: int) -> None:
    """In an async worker: SIGTERM / SIGUSR1 from anyone but the rank's process (a scheduler,
    ``kill``, the whole process group) go on to the rank's process, which stops at its next
    safe point and closes the envs, while this worker keeps stepping; from the rank's process
    itself (closing its envs, or exiting) they end the worker. A thread waits for the signals
    (blocked in every other thread) so that it can read who sent them."""
    signals = set(_FORWARDED_SIGNALS)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)

    def relay() -> None:
        while True:
            info = signal.sigwaitinfo(signals)
            if info.si_pid == rank_pid:
                os._exit(128 + info.si_signo)
            try:
                os.kill(rank_pid, info.si_signo)
            except ProcessLookupError:
                os._exit(128 + info.si_signo)

    threading.Thread(target=relay, name="graphrl-signal-relay", daemon=True).start()


def _in_worker(make: Callable[[], gym.Env], rank_pid: int) -> gym.Env:
    """Make the env; in an async worker process (not in the rank's process ``rank_pid``, where
    gymnasium also makes one to read the spaces), relay stop signals first."""
    if os.getpid() != rank_pid:
        _relay_stop_signals(rank_pid)
    return make()


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class GuardedAsyncVectorEnv(gym.vector.AsyncVectorEnv):
    """``AsyncVectorEnv`` whose faults are one line naming the env, its index and the step.

    Args:
        env_id: The sub-envs' id (for the messages).
        env_fns: One constructor per sub-env (each run in its own worker process).
        **kwargs: ``AsyncVectorEnv`` arguments.
    """

    _PIPE_ERRORS = (EOFError, BrokenPipeError, ConnectionResetError)

    def __init__(self, env_id: str, env_fns: Sequence[Callable[[], gym.Env]], **kwargs: Any):
        self.env_id = env_id
        self.vector_steps = 0  # steps every sub-env took (same-step autoreset: one per call)
        self._broken = False  # a worker died: close() terminates the others
        pid = os.getpid()
        super().__init__([functools.partial(_in_worker, fn, pid) for fn in env_fns], **kwargs)

    def _dead_worker(self, when: str) -> EnvFault:
        deadline = time.monotonic() + 5.0  # the broken pipe may come before the exit status
        while True:
            dead = [(i, p) for i, p in enumerate(self.processes) if p.exitcode is not None]
            if dead or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not dead:
            return EnvFault(
                f"a worker process of {self.env_id} stopped answering {when} {_DEBUG_HINT}"
            )
        index, process = dead[0]
        return EnvFault(
            f"{_env_name(self.env_id, index)} died {when}: its worker process (pid "
            f"{process.pid}) {_how_it_ended(process.exitcode)}"
        )

    def _guard(self, call: Callable[[], Any], when: str) -> Any:
        try:
            return call()
        except self._PIPE_ERRORS as exc:
            # The pending call cannot complete: close() terminates the workers, not waits.
            self._broken = True
            self._state = AsyncState.DEFAULT
            raise self._dead_worker(when) from exc

    def close_extras(self, timeout: float | None = None, terminate: bool = False) -> None:
        super().close_extras(timeout, terminate or self._broken)

    def step_async(self, actions: Any) -> None:
        when = f"at env step {self.vector_steps + 1}"
        self._guard(lambda: super(GuardedAsyncVectorEnv, self).step_async(actions), when)

    def step_wait(self, timeout: float | None = None) -> Any:
        when = f"at env step {self.vector_steps + 1}"
        result = self._guard(lambda: super(GuardedAsyncVectorEnv, self).step_wait(timeout), when)
        self.vector_steps += 1
        return result

    def reset_async(self, seed: Any = None, options: Any = None) -> None:
        when = f"on reset after env step {self.vector_steps}"
        self._guard(lambda: super(GuardedAsyncVectorEnv, self).reset_async(seed, options), when)

    def reset_wait(self, timeout: float | None = None) -> Any:
        when = f"on reset after env step {self.vector_steps}"
        return self._guard(lambda: super(GuardedAsyncVectorEnv, self).reset_wait(timeout), when)

    def _raise_if_errors(self, successes: Iterable[bool]) -> None:
        # As gymnasium's, without logging each worker's traceback: the error is one line.
        successes = list(successes)
        if all(successes):
            return
        fault: BaseException | None = None
        for _ in range(len(successes) - sum(successes)):
            index, exctype, value, _trace = self.error_queue.get()
            self.parent_pipes[index].close()
            self.parent_pipes[index] = None
            if isinstance(value, EnvFault):
                fault = value
            else:
                fault = EnvFault(
                    f"{_env_name(self.env_id, index)} raised {exctype.__name__}: {value} "
                    f"at env step {self.vector_steps + 1} {_DEBUG_HINT}"
                )
        self._state = AsyncState.DEFAULT
        assert fault is not None
        raise fault
