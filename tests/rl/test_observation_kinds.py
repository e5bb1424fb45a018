"""Every observation kind an agent accepts: entity sets, Dict globals, Graphs, pointer actions.

Through collector, buffer, minibatches, update and evaluate, on the toy envs of ``toy_envs``.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import lightning as L
import numpy as np
import pytest
import torch
import toy_envs

from graphrl.envs.vector import env_seeds, env_spaces, make_vector_env
from graphrl.graphs.observations import GraphObs, ObsDict, as_observation
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.rl import PPO, evaluate_policy
from graphrl.rl.rollout import RolloutCollector

SET, DICT, GRAPH = "toy_envs:EntityPick-v0", "toy_envs:EntityGoalPick-v0", "toy_envs:GraphPick-v0"
GIVEN_RGCN = {"topology": ["given", "complete"], "processor": ProcessorConfig(layer="rgcn")}
KINDS = {
    "grid": ("toy_envs:Corridor-v0", {}),
    "set": (SET, {"action_head": "pointer", "encoder_kwargs": {"presence": 0}}),
    "set_pooled": (SET, {"encoder_kwargs": {"presence": "nonzero"}}),
    "dict_node": (DICT, {"action_head": "pointer", "globals_as": "node"}),
    "dict_readout": (DICT, {"action_head": "pointer", "globals_as": "readout"}),
    "graph": (GRAPH, {"action_head": "pointer", **GIVEN_RGCN}),
}


def _trainer() -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=-1,
    )


def _ppo(env_id: str, iterations: int, **policy_kwargs) -> PPO:
    policy = functools.partial(GraphActorCritic, channels=32, hidden=32, **policy_kwargs)
    return PPO(
        env_id=env_id,
        policy=policy,
        num_envs=4,
        num_steps=16,
        total_timesteps=4 * 16 * iterations,
        num_minibatches=4,
        update_epochs=2,
        learning_rate=3e-3,
        seed=0,
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_trains_and_evaluates(kind: str) -> None:
    env_id, kwargs = KINDS[kind]
    torch.manual_seed(0)
    module = _ppo(env_id, 2, **kwargs)
    before = [p.detach().clone() for p in module.parameters()]
    _trainer().fit(module)
    assert module.iteration == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))
    stats = module.evaluate(episodes=6, num_envs=3)
    assert stats["episodes"] == 6 and np.isfinite(stats["mean_return"])


@pytest.mark.parametrize("kind", ["dict_node", "graph"])
def test_collector_buffer_and_minibatches_hold_the_kind(kind: str) -> None:
    env_id, kwargs = KINDS[kind]
    space, num_actions = env_spaces(env_id)
    policy = GraphActorCritic(space, num_actions, channels=16, hidden=16, **kwargs)
    seeds = env_seeds(0, 3)
    collector = RolloutCollector(make_vector_env(env_id, seeds), num_steps=5, seeds=seeds)
    try:
        buffer = collector.collect(policy)
        obs = buffer.obs
        flat = buffer.transitions(torch.zeros(5, 3), torch.zeros(5, 3)).obs
        index = torch.tensor([14, 0, 7])
        batch = flat[index]
        # A minibatch of stored observations gives the policy what it gave during the rollout.
        logits, _ = policy(batch)
        assert torch.allclose(
            logits.log_softmax(-1).gather(1, buffer.actions.flatten()[index, None]).squeeze(1),
            buffer.logprobs.flatten()[index],
            atol=1e-5,
        )
        if kind == "dict_node":
            assert isinstance(obs, ObsDict) and obs["entities"].shape == (5, 3, 5, 3)
            assert obs["goal"].shape == (5, 3, 2) and batch["entities"].shape == (3, 5, 3)
        else:
            assert isinstance(obs, GraphObs)
            counts = obs.node_mask.sum(-1)
            # padded to this rollout's largest graph, never to a global maximum
            assert obs.nodes.shape[2] == int(counts.max())
            assert batch.nodes.shape[1] == int(batch.node_mask.sum(-1).max())
            assert (counts >= 3).all() and (counts <= 7).all()
            # edges are where the env put them: the last real edge is source -> target
            last = obs.edge_mask.sum(-1) - 1
            assert (obs.edges[..., 0].gather(2, last.unsqueeze(-1)) == 1).all()
    finally:
        collector.close()


def test_graph_storage_grows_to_the_rollout_max_and_restarts_each_rollout() -> None:
    envs = [toy_envs.GraphPick(min_nodes=n, max_nodes=n) for n in (3, 6, 4)]
    graphs = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
    step = GraphObs.from_instances(graphs)
    assert step.nodes.shape == (3, 6, 2) and step.node_mask.sum(-1).tolist() == [3, 6, 4]
    for b, graph in enumerate(graphs):
        assert torch.equal(step.nodes[b, : len(graph.nodes)], torch.as_tensor(graph.nodes))
        m = len(graph.edge_links)
        assert torch.equal(step.edge_links[b, :m].long(), torch.as_tensor(graph.edge_links))
        assert not step.edge_mask[b, m:].any()
    from graphrl.graphs.observations import allocate_observations

    storage = allocate_observations(envs[0].observation_space, (2, 3), "cpu")
    storage[0] = step[torch.tensor([0, 0, 2])]  # at most 4 nodes
    assert storage.nodes.shape[2] == 4
    storage[1] = step
    assert storage.nodes.shape[2] == 6 and torch.equal(storage.nodes[1], step.nodes)
    assert torch.equal(storage.nodes[0, 2, :4], step.nodes[2, :4])
    storage.reset_padding()
    assert storage.nodes.shape[2] == 0


def test_graph_pointer_policy_learns_from_the_envs_typed_edges() -> None:
    """Only the type-1 edge says which node is the target: a given+complete R-GCN learns it."""
    torch.manual_seed(0)
    space, num_actions = env_spaces(GRAPH)
    untrained = GraphActorCritic(
        space, num_actions, channels=32, hidden=32, action_head="pointer", **GIVEN_RGCN
    )
    chance = evaluate_policy(untrained, GRAPH, 32, greedy=False).returns.mean()
    torch.manual_seed(0)
    module = _ppo(GRAPH, 12, action_head="pointer", **GIVEN_RGCN)
    _trainer().fit(module)
    stats = module.evaluate(episodes=32, greedy=False)
    assert stats["mean_return"] >= 3.0 > chance + 1.0  # 4 picks per episode


def _logits(policy: GraphActorCritic, env: gym.Env, seeds: range) -> torch.Tensor:
    obs = np.stack([env.reset(seed=s)[0] for s in seeds])
    return policy(torch.as_tensor(obs))[0]


@pytest.mark.parametrize("layer", ["attention", "gnn"])
def test_permuting_the_envs_entities_permutes_the_pointer_and_not_the_pooled_policy(layer):
    torch.manual_seed(0)
    perm = [3, 0, 5, 1, 4, 2]
    plain, permuted = toy_envs.EntityPick(), toy_envs.EntityPick(permutation=perm)
    space, num_actions = plain.observation_space, 6
    kwargs = {
        "channels": 16,
        "hidden": 16,
        "encoder_kwargs": {"presence": 0},
        "processor": ProcessorConfig(layer=layer, heads=2),
    }
    pointer = GraphActorCritic(space, num_actions, action_head="pointer", **kwargs)
    pooled = GraphActorCritic(space, num_actions, **kwargs)
    seeds = range(8)
    ref, moved = _logits(pointer, plain, seeds), _logits(pointer, permuted, seeds)
    probs, moved_probs = ref.softmax(-1), moved.softmax(-1)
    torch.testing.assert_close(moved_probs, probs[:, perm], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(probs, probs[:, perm])  # the permutation does change slots
    assert (
        probs[torch.as_tensor(np.stack([plain.reset(seed=s)[0] for s in seeds]))[..., 0] == 0] == 0
    ).all()  # absent entities are never picked
    torch.testing.assert_close(
        _logits(pooled, permuted, seeds), _logits(pooled, plain, seeds), rtol=1e-4, atol=1e-6
    )


def test_absent_entities_are_never_attended_nor_pooled() -> None:
    torch.manual_seed(0)
    env = toy_envs.EntityPick()
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(6)]))
    absent = obs[..., 0] == 0
    assert absent.any()
    noisy = obs.clone()
    noisy[absent] = torch.randn(int(absent.sum()), 3)
    noisy[..., 0][absent] = 0.3  # presence below 0.5: still absent
    for head in ("pointer", "pooled"):
        policy = GraphActorCritic(
            env.observation_space, 6, channels=16, action_head=head, encoder_kwargs={"presence": 0}
        )
        (a, va), (b, vb) = policy(obs), policy(noisy)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(va, vb)
    unmasked = GraphActorCritic(env.observation_space, 6, channels=16)  # presence: all
    assert not torch.allclose(unmasked(obs)[1], unmasked(noisy)[1])


def test_globals_as_node_or_readout_change_the_graph_and_reach_the_policy() -> None:
    space, num_actions = env_spaces(DICT)
    env = toy_envs.EntityGoalPick()
    raw, _ = env.reset(seed=0)
    obs = as_observation({k: v[None] for k, v in raw.items()}, space)
    flipped = ObsDict({**obs, "goal": obs["goal"].flip(-1)})
    for mode, slots in (("node", 6), ("readout", 5)):
        torch.manual_seed(0)
        policy = GraphActorCritic(
            space, num_actions, channels=16, globals_as=mode, action_head="pointer"
        )
        graph = policy.backbone(obs).graph
        assert graph.nodes_per_graph == slots and (graph.context is not None) == (mode == "readout")
        logits, _ = policy(obs)
        assert logits.shape == (1, 5)
        assert not torch.allclose(logits, policy(flipped)[0])  # the goal matters


def test_a_space_no_encoder_accepts_fails_with_one_line() -> None:
    with pytest.raises(ValueError, match=r"cannot read observation space Discrete\(3\); accepted"):
        GraphActorCritic(gym.spaces.Discrete(3), 2)
    with pytest.raises(ValueError, match="action_head=pointer needs Discrete"):
        GraphActorCritic(gym.spaces.Box(0, 1, (5, 3)), 4, action_head="pointer")


def test_an_encoder_of_the_other_observation_kind_gives_way_to_that_kinds_default() -> None:
    """One config serves grid and entity-set envs: ``objects`` (a grid encoder) on a set
    becomes ``vectors`` without the grid's encoder arguments, and says so."""
    grid = gym.spaces.Box(0, 3, (4, 4, 2), np.uint8)
    entities = gym.spaces.Box(-1.0, 1.0, (5, 3), np.float32)
    with pytest.warns(UserWarning, match="encoder 'vectors' reads set observations"):
        on_grid = GraphActorCritic(grid, 2, encoder="vectors")
    assert type(on_grid.backbone.encoder).__name__ == "GridEncoder"
    with pytest.warns(UserWarning, match="using the 'vectors' encoder without encoder_kwargs"):
        on_set = GraphActorCritic(
            entities, 2, encoder="objects", encoder_kwargs={"background": [0, 1]}
        )
    assert type(on_set.backbone.encoder).__name__ == "VectorEncoder"
    logits, _ = on_set(torch.randn(3, 5, 3))
    assert logits.shape == (3, 2)


def test_the_cli_reports_an_unaccepted_space_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from graphrl.cli import main; main()",
            "fit",
            "--model=graphrl.rl.PPO",
            "--model.env_id=Blackjack-v1",
            "--model.policy=graphrl.models.GraphActorCritic",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert "Tuple(Discrete(32)" in lines[-1] and "accepted: Box" in lines[-1]


def test_entities_key_picks_the_entity_set_of_a_dict_and_the_rest_are_globals() -> None:
    space = gym.spaces.Dict(
        {
            "cars": gym.spaces.Box(-1, 1, (4, 3), np.float32),
            "lanes": gym.spaces.Box(-1, 1, (2, 5), np.float32),
        }
    )
    with pytest.raises(
        ValueError, match=r"2 entity sets .* name one with the backbone's entities_key"
    ):
        GraphActorCritic(space, 4)
    policy = GraphActorCritic(space, 4, channels=16, entities_key="cars", action_head="pointer")
    layout = policy.backbone.layout
    assert layout.global_keys == ["lanes"] and layout.global_channels == 10
    obs = ObsDict({"cars": torch.randn(3, 4, 3), "lanes": torch.randn(3, 2, 5)})
    logits, value = policy(obs)
    assert logits.shape == (3, 4) and value.shape == (3,)
    other = GraphActorCritic(space, 2, channels=16, entities_key="lanes", action_head="pointer")
    assert other(obs)[0].shape == (3, 2)


@pytest.mark.parametrize("kind", ["dict_node", "graph"])
def test_dict_and_graph_runs_checkpoint_and_resume_exactly(kind: str, tmp_path) -> None:
    """The collector's state (envs, current observations) is checkpointed for every kind, and
    4 iterations equal 2 + resume + 2 bit for bit."""
    from graphrl.checkpoints import Checkpoint

    env_id, kwargs = KINDS[kind]

    def fit(module: PPO, root, ckpt_path=None) -> None:
        trainer = L.Trainer(
            accelerator="cpu",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_epochs=-1,
            default_root_dir=root,
            callbacks=[Checkpoint(every_n_iterations=2, save_top_k=-1, dirpath=root / "ckpt")],
        )
        trainer.fit(module, ckpt_path=ckpt_path)

    torch.manual_seed(0)
    full = _ppo(env_id, 4, **kwargs)
    fit(full, tmp_path / "full")
    (half,) = [
        p
        for p in (tmp_path / "full/ckpt").glob("*-step=*.ckpt")
        if torch.load(p, weights_only=False)["on_policy"]["iteration"] == 2
    ]
    torch.manual_seed(1)
    resumed = _ppo(env_id, 4, **kwargs)
    fit(resumed, tmp_path / "resumed", ckpt_path=str(half))
    assert resumed.iteration == 4
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
