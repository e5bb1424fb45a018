"""Episode GIFs with the agent's attention drawn over the grid.

Each frame shows the level, then one panel per attention head of the last layer: the weights
with which the agent's own cell attends to every cell (``weights[h, agent, :]``), as a heat map
blended over the level.
"""

from __future__ import annotations

from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch
from matplotlib import colormaps
from torch import nn
from torch.distributions import Categorical

from graphrl.envs import make_env

CELL_PX = 24
MINIGRID_AGENT = 10  # minigrid's OBJECT_TO_IDX["agent"]


def grid_rgb(obs: np.ndarray, cell_px: int = CELL_PX) -> np.ndarray:
    """``[H, W, C]`` symbolic observation -> ``[H * px, W * px, 3]`` uint8 picture."""
    if obs.shape[-1] == 2:  # Box-World: colour id, role
        from graphrl.envs.boxworld import observation_to_rgb

        return observation_to_rgb(obs, cell_px)
    palette = (colormaps["tab20"](np.arange(20))[:, :3] * 255).astype(np.uint8)
    rgb = palette[(obs[..., 0].astype(np.int64) * 3 + obs[..., 1]) % 20]
    rgb[obs[..., 0] <= 1] = 40  # unseen / empty cells dark
    return np.repeat(np.repeat(rgb, cell_px, axis=0), cell_px, axis=1)


def agent_cell(obs: np.ndarray) -> int:
    """Row-major index of the agent's cell in ``obs [H, W, C]``."""
    h, w = obs.shape[:2]
    if obs.shape[-1] == 2:  # Box-World role channel
        from graphrl.envs.boxworld_levels import ROLE_AGENT

        hits = np.argwhere(obs[..., 1] == ROLE_AGENT)
    else:
        hits = np.argwhere(obs[..., 0] == MINIGRID_AGENT)
    if len(hits):
        return int(hits[0][0] * w + hits[0][1])
    return (h - 1) * w + w // 2  # MiniGrid's egocentric view: bottom centre, facing up


def attention_panel(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Blend ``heat [H, W]`` (one weight per cell) as a heat map over ``frame``."""
    heat = heat / max(float(heat.max()), 1e-8)
    px = frame.shape[0] // heat.shape[0]
    colored = (colormaps["inferno"](heat)[..., :3] * 255).astype(np.uint8)
    colored = np.repeat(np.repeat(colored, px, axis=0), px, axis=1)
    return (0.35 * frame + 0.65 * colored).astype(np.uint8)


@torch.no_grad()
def agent_attention(policy: nn.Module, obs: np.ndarray) -> np.ndarray | None:
    """What the agent's cell attends to in the last layer, per head: ``[heads, H, W]``.

    Entities are mapped back to cells through their coordinates, so compacted object sets
    (``objects`` encoder with ``compact=True``) are drawn where they are. None when the policy
    has no attention or the agent's cell is not an entity.
    """
    backbone = getattr(policy, "backbone", None)
    if backbone is None or not getattr(backbone.processor, "is_attention", False):
        return None
    out = backbone(torch.as_tensor(obs).unsqueeze(0), return_attention_weights=True)
    if not out.attention or out.graph is None:
        return None
    weights = out.attention[-1][0].cpu().numpy()  # [heads, N, N]
    pos = out.graph.dense_pos()[0].long().cpu().numpy()  # [N, 2]
    real = out.graph.mask[0].cpu().numpy()
    h, w = obs.shape[:2]
    if pos.max(initial=0) >= max(h, w):  # pixel encoders: entities are feature-map cells
        return None
    me = agent_cell(obs)
    hits = np.flatnonzero(real & (pos[:, 0] * w + pos[:, 1] == me))
    if not len(hits):
        return None
    heat = np.zeros((weights.shape[0], h, w), dtype=np.float32)
    heat[:, pos[real, 0], pos[real, 1]] = weights[:, hits[0], real]
    return heat


def attention_strip(policy: nn.Module, obs: np.ndarray) -> np.ndarray:
    """The level, then one panel per head: what the agent's cell attends to (last layer).

    Args:
        policy: Any policy; panels are added for graph agents with attention.
        obs: One observation ``[H, W, C]``.

    Returns:
        ``[H * px, W', 3]`` uint8 image.
    """
    frame = grid_rgb(obs)
    heat = agent_attention(policy, obs)
    panels = [frame] + ([] if heat is None else [attention_panel(frame, hh) for hh in heat])
    spacer = np.full((frame.shape[0], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, spacer)][:-1], axis=1)


@torch.no_grad()
def render_episode(
    policy: nn.Module,
    env_id: str,
    env_kwargs: dict[str, Any],
    out: str,
    seed: int = 0,
    greedy: bool = False,
    max_steps: int = 200,
    fps: int = 4,
) -> dict[str, Any]:
    """Run one episode and write a GIF of it with per-head attention from the agent's cell.

    Returns:
        ``{"return", "length", "solved", "frames"}`` of the episode.
    """
    env = make_env(env_id, seed=seed, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    policy.eval()
    frames, total, length, solved = [], 0.0, 0, False
    for _ in range(max_steps):
        batch = torch.as_tensor(obs).unsqueeze(0)
        frames.append(attention_strip(policy, obs))
        logits, _ = policy(batch)
        action = logits.argmax(-1) if greedy else Categorical(logits=logits).sample()
        obs, reward, terminated, truncated, info = env.step(int(action.item()))
        total += float(reward)
        length += 1
        if terminated or truncated:
            solved = bool(info.get("solved", False))
            frames.append(attention_strip(policy, obs))  # the final state
            break
    env.close()
    imageio.mimsave(out, frames, duration=1000 / fps, loop=0)
    return {"return": total, "length": length, "solved": solved, "frames": len(frames)}
