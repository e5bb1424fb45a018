import time

import gymnasium as gym
import numpy as np
import torch

from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.rl import MLPPolicy

torch.set_num_threads(1)
space = gym.spaces.Box(-np.inf, np.inf, (5, 5), np.float32)
obs = torch.randn(256, 5, 5)
obs[:, :, 0] = 1.0
for name, pol in {
    "ego_attention": GraphActorCritic(
        space,
        5,
        channels=64,
        encoder="vectors",
        encoder_kwargs={"presence": 0, "hidden_channels": 64},
        topology="complete",
        processor=ProcessorConfig(layer="attention", num_layers=1, heads=2),
        readout="own_node",
        hidden=64,
    ),
    "mlp": MLPPolicy(space, 5, hidden=64, num_layers=2),
}.items():
    opt = torch.optim.Adam(pol.parameters(), 5e-4)
    start = time.perf_counter()
    for _ in range(10):
        for mb in torch.randperm(256).split(64):
            logits, v = pol(obs[mb])
            loss = logits.logsumexp(-1).mean() + v.square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    print(
        name, "update (10 epochs x 4 minibatches of 64) s:", round(time.perf_counter() - start, 3)
    )
