"""RL throughput, measured side by side in one run on the same MiniGrid env and settings.

Prints one JSON line per comparison, ``{"name", "ours_sps", "reference_sps", "ratio"}`` with
``ratio = ours_sps / reference_sps`` (higher is better), then a markdown table:

- ``ppo_mlp_vs_sb3``: graphrl PPO with the MLP baseline policy vs Stable-Baselines3 PPO with its
  default MlpPolicy (framework overhead; target >= 1.0). Needs the ``bench`` extra.
- ``ppo_attention_vs_floor``: graphrl PPO with the relational agent vs its compute floor, the
  rate that raw env stepping plus the same network's forward passes (rollout) and forward +
  backward passes (update), timed alone on the same batch sizes, would allow (target >= 0.77).
- ``graph_build_share``: the share of a PPO iteration spent building entity graphs (encoder +
  topology), from timers around those modules during real training (target < 5%).
- ``graph_obs_vs_padded``: PPO env-steps/s and rollout observation memory of an env with
  ``spaces.Graph`` observations (4 to 32 nodes a step, a declared maximum of 128), stored padded
  to each rollout's largest graph and trimmed per minibatch, against the same env with its
  observation padded to the maximum (a ``Box(128, F + 1)`` entity set with a presence column);
  the same attention agent (complete topology) on both. ``ratio``: steps/s graph / padded;
  ``memory_ratio``: padded bytes / graph bytes (higher is better for both).

    python scripts/bench_rl.py [--env MiniGrid-Empty-8x8-v0] [--timesteps 16384] [--quick]
    python scripts/bench_rl.py --only-graph   # just the graph_obs_vs_padded row
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import torch

from graphrl.envs.vector import env_spaces, make_vector_env
from graphrl.graphs.observations import observation_nbytes
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.rl import PPO, MLPPolicy
from graphrl.rl.rollout import RolloutCollector
from graphrl.trainers import quiet_trainer

GRAPH_MAX_NODES = 128


class VariableGraphs(gym.Env):
    """A random graph of 4..32 nodes (features ``[is_target, noise]``, a chain of edges) each
    step; reward 1 for naming the target node. Declares at most ``GRAPH_MAX_NODES`` nodes."""

    def __init__(self) -> None:
        box = gym.spaces.Box(-1.0, 1.0, (2,))
        self.observation_space = gym.spaces.Graph(box, gym.spaces.Discrete(1))
        self.action_space = gym.spaces.Discrete(GRAPH_MAX_NODES)

    def _graph(self) -> gym.spaces.GraphInstance:
        n = int(self.np_random.integers(4, 33))
        nodes = np.zeros((n, 2), np.float32)
        nodes[:, 1] = self.np_random.uniform(-1, 1, n)
        self.target = int(self.np_random.integers(n))
        nodes[self.target, 0] = 1.0
        links = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
        return gym.spaces.GraphInstance(nodes, np.zeros(n - 1, np.int64), links)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._graph(), {}

    def step(self, action):
        reward = float(int(action) == self.target)
        self.steps += 1
        return self._graph(), reward, self.steps >= 16, False, {}


class PaddedToMax(gym.ObservationWrapper):
    """The same env, its graphs padded to ``GRAPH_MAX_NODES`` rows ``[presence, features]``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (GRAPH_MAX_NODES, 3), np.float32)

    def observation(self, graph: gym.spaces.GraphInstance) -> np.ndarray:
        rows = np.zeros((GRAPH_MAX_NODES, 3), np.float32)
        rows[: len(graph.nodes), 0] = 1.0
        rows[: len(graph.nodes), 1:] = graph.nodes
        return rows


gym.register("bench_rl/VariableGraphs-v0", entry_point=VariableGraphs)
gym.register("bench_rl/PaddedGraphs-v0", entry_point=lambda: PaddedToMax(VariableGraphs()))


def entity_attention_policy(observation_space, num_actions):
    """The same attention agent for Graph and padded entity-set observations (pointer actions)."""
    presence = {"presence": 0} if isinstance(observation_space, gym.spaces.Box) else {}
    return GraphActorCritic(
        observation_space,
        num_actions,
        channels=32,
        encoder="vectors",
        encoder_kwargs=presence,
        topology="complete",
        processor=ProcessorConfig(layer="attention", num_layers=1, heads=2),
        hidden=32,
        action_head="pointer",
    )


def graph_vs_padded(args) -> dict[str, float]:
    """PPO env-steps/s and rollout observation bytes, Graph storage against padded-to-max."""
    out: dict[str, float] = {}
    saved_env = args.env
    for name, env_id in (
        ("graph", "bench_rl/VariableGraphs-v0"),
        ("padded", "bench_rl/PaddedGraphs-v0"),
    ):
        args.env = env_id
        torch.manual_seed(0)
        sps, module = train_ours(entity_attention_policy, args, args.timesteps)
        out[f"{name}_sps"] = sps
        seeds = list(range(args.num_envs))
        collector = RolloutCollector(make_vector_env(env_id, seeds), args.num_steps, seeds)
        out[f"{name}_obs_bytes"] = observation_nbytes(collector.collect(module.policy).obs)
        collector.close()
    args.env = saved_env
    return out


def attention_policy(observation_space, num_actions):  # a factory PPO calls with the spaces
    return GraphActorCritic(
        observation_space,
        num_actions,
        channels=64,
        encoder="grid",
        topology="complete",
        processor=ProcessorConfig(layer="attention", num_layers=2, heads=2),
    )


def train_ours(policy, args, timesteps: int) -> tuple[float, PPO]:
    """Wall-clock env-steps/s of ``graphrl`` PPO (Lightning Trainer, one PPO step per iteration)."""
    module = PPO(
        env_id=args.env,
        policy=policy,
        num_envs=args.num_envs,
        num_steps=args.num_steps,
        total_timesteps=timesteps,
        update_epochs=args.update_epochs,
        num_minibatches=args.num_envs * args.num_steps // args.minibatch_size,
        seed=0,
    )
    trainer = quiet_trainer(max_epochs=-1)
    start = time.perf_counter()
    trainer.fit(module)
    return module.env_steps / (time.perf_counter() - start), module


def train_sb3(args, timesteps: int) -> float:
    """Wall-clock env-steps/s of Stable-Baselines3 PPO with MlpPolicy on the same envs."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    from graphrl.envs import make_env

    venv = make_vec_env(lambda: make_env(args.env), n_envs=args.num_envs, seed=0)
    model = SB3PPO(
        "MlpPolicy",
        venv,
        n_steps=args.num_steps,
        batch_size=args.minibatch_size,
        n_epochs=args.update_epochs,
        seed=0,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    return timesteps / (time.perf_counter() - start)


def compute_floor_sps(args, repeats: int) -> float:
    """Steps/s that env stepping + the network's own fwd (rollout) and fwd+bwd (update) allow."""
    space, num_actions = env_spaces(args.env, {})
    policy = attention_policy(space, num_actions)
    envs = make_vector_env(args.env, list(range(args.num_envs)), "sync", {})
    obs, _ = envs.reset(seed=0)
    batch_obs = []
    start = time.perf_counter()
    for _ in range(args.num_steps * repeats):
        batch_obs.append(obs)
        obs, *_ = envs.step(envs.action_space.sample())
    env_time = (time.perf_counter() - start) / repeats
    envs.close()
    obs_t = torch.as_tensor(np.stack(batch_obs[: args.num_steps]))  # [T, N, ...]
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(repeats):
            for t in range(args.num_steps):
                policy(obs_t[t])
    rollout_time = (time.perf_counter() - start) / repeats
    flat = obs_t.flatten(0, 1)
    num_minibatches = flat.shape[0] // args.minibatch_size
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4)
    start = time.perf_counter()
    for _ in range(repeats):
        for _ in range(args.update_epochs):
            for mb in flat[torch.randperm(flat.shape[0])].split(args.minibatch_size)[
                :num_minibatches
            ]:
                logits, value = policy(mb)
                loss = logits.logsumexp(-1).mean() + value.square().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    update_time = (time.perf_counter() - start) / repeats
    return args.num_envs * args.num_steps / (env_time + rollout_time + update_time)


@contextmanager
def timed_modules(modules, totals: dict[str, float]):
    """Accumulate wall time spent inside each module's forward into ``totals``."""
    handles = []
    for name, module in modules.items():
        totals[name] = 0.0

        def pre(_m, _i, name=name):
            totals[f"_{name}"] = time.perf_counter()

        def post(_m, _i, _o, name=name):
            totals[name] += time.perf_counter() - totals.pop(f"_{name}")

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield totals
    finally:
        for h in handles:
            h.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="MiniGrid-Empty-8x8-v0")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--minibatch-size", type=int, default=64)
    parser.add_argument("--update-epochs", type=int, default=10)
    parser.add_argument("--timesteps", type=int, default=16_384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 comparison")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--only-graph", action="store_true", help="only graph_obs_vs_padded")
    args = parser.parse_args()
    if args.quick:
        args.timesteps, args.num_steps, args.update_epochs = 2 * args.num_envs * 16, 16, 2
        args.minibatch_size = 32
    torch.set_num_threads(args.threads)
    rows = []

    def emit(name: str, ours: float, reference: float) -> None:
        row = {
            "name": name,
            "ours_sps": round(ours, 1),
            "reference_sps": round(reference, 1),
            "ratio": round(ours / reference, 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    if args.only_graph:
        print_graph_row(args)
        return

    if not args.no_sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print("# stable-baselines3 missing: pip install -e '.[bench]' for ppo_mlp_vs_sb3")
        else:
            ours, sb3 = [], []
            for _ in range(1 if args.quick else 2):  # interleaved against the VM's drift
                ours.append(train_ours(MLPPolicy, args, args.timesteps)[0])
                sb3.append(train_sb3(args, args.timesteps))
            emit("ppo_mlp_vs_sb3", float(np.median(ours)), float(np.median(sb3)))

    totals: dict[str, float] = {}
    space, num_actions = env_spaces(args.env, {})
    probe = attention_policy(space, num_actions)
    builders = {"encoder": probe.backbone.encoder, "topology": probe.backbone.topology}
    start = time.perf_counter()
    with timed_modules(builders, totals):
        ours_sps, _ = train_ours(lambda *_: probe, args, args.timesteps)
    wall = time.perf_counter() - start
    floor = compute_floor_sps(args, repeats=1 if args.quick else 3)
    emit("ppo_attention_vs_floor", ours_sps, floor)
    share = (totals["encoder"] + totals["topology"]) / wall
    print(
        json.dumps(
            {
                "name": "graph_build_share",
                "share": round(share, 4),
                "encoder_s": round(totals["encoder"], 3),
                "topology_s": round(totals["topology"], 3),
                "wall_s": round(wall, 3),
            }
        )
    )

    print("\n| comparison | ours (env-steps/s) | reference | ratio |\n|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['ours_sps']:.0f} | {r['reference_sps']:.0f} | {r['ratio']:.2f} |"
        )
    print(f"| graph_build_share | {100 * share:.1f}% of an iteration | target < 5% | |")
    print_graph_row(args)


def print_graph_row(args) -> None:
    """The ``graph_obs_vs_padded`` JSON line and table row."""
    g = graph_vs_padded(args)
    row = {
        "name": "graph_obs_vs_padded",
        "ours_sps": round(g["graph_sps"], 1),
        "reference_sps": round(g["padded_sps"], 1),
        "ratio": round(g["graph_sps"] / g["padded_sps"], 3),
        "ours_obs_mib": round(g["graph_obs_bytes"] / 2**20, 3),
        "reference_obs_mib": round(g["padded_obs_bytes"] / 2**20, 3),
        "memory_ratio": round(g["padded_obs_bytes"] / g["graph_obs_bytes"], 2),
    }
    print(json.dumps(row), flush=True)
    print(
        f"| graph_obs_vs_padded | {row['ours_sps']:.0f} | {row['reference_sps']:.0f} | "
        f"{row['ratio']:.2f} (rollout obs {row['ours_obs_mib']} MiB vs "
        f"{row['reference_obs_mib']} MiB, {row['memory_ratio']}x less) |"
    )


if __name__ == "__main__":
    main()
