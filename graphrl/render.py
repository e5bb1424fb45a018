"""Episode GIFs whose every frame reads on its own: the board with the agent marked, one panel
per attention head of the last layer (what the agent's entity attends to, as a heat overlay
with a colour scale), and the step, last action, reward, return and the env's own caption (the
held key on Box-World) written above.

Everything env-specific comes from the env itself through
:class:`~graphrl.envs.ObservationDrawer` (how to draw an observation, where the agent is, what
to caption), and whether a policy has attention from its processor's declaration
(``returns_attention``), so any env :func:`~graphrl.envs.make_env` takes can be rendered.
"""

from __future__ import annotations

from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn
from torch.distributions import Categorical

from graphrl.envs import ObservationDrawer, make_env
from graphrl.viz import figure_to_array, plt

CELL_PX = 24
HEAT_CMAP = "inferno"


def _to_feature_cell(index: int, size: int, feature_size: int) -> int:
    """Board row (or column) ``index`` -> the feature-map row whose cells cover it best."""
    return round(index * (feature_size - 1) / max(size - 1, 1))


@torch.no_grad()
def agent_attention(
    policy: nn.Module, obs: np.ndarray, agent: tuple[int, int] | None
) -> np.ndarray | None:
    """What the agent's entity attends to in the last layer, per head, on the board's cells.

    Entities are placed by their coordinates, so compacted object sets are drawn where they
    are. Pixel encoders' entities are feature-map cells: the agent's entity is the feature cell
    over the agent's board cell, and each board cell shows the weight of the feature cell over
    it.

    Args:
        policy: A policy with a graph ``backbone``; others have no attention (None).
        obs: One observation ``[H, W, C]``.
        agent: The agent's board cell ``(row, col)``, or None (then no attention is drawn).

    Returns:
        ``[heads, H, W]`` float weights, or None.
    """
    backbone = getattr(policy, "backbone", None)
    processor = getattr(backbone, "processor", None)
    if agent is None or not getattr(processor, "returns_attention", False):
        return None
    out = backbone(torch.as_tensor(obs).unsqueeze(0), return_attention_weights=True)
    if not out.attention or out.graph is None:
        return None
    weights = out.attention[-1][0].cpu().numpy()  # [heads, N, N]
    pos = out.graph.dense_pos()[0].round().long().cpu().numpy()  # [N, 2]
    real = out.graph.mask[0].cpu().numpy()
    h, w = obs.shape[:2]
    grid = out.graph.grid_shape
    if grid is not None and tuple(grid) != (h, w):  # feature-map cells
        fh, fw = grid
        rows = np.array([_to_feature_cell(r, h, fh) for r in range(h)])
        cols = np.array([_to_feature_cell(c, w, fw) for c in range(w)])
        me = rows[agent[0]] * fw + cols[agent[1]]
        per_cell = weights[:, me, :].reshape(-1, fh, fw)  # dense over the whole feature map
        return per_cell[:, rows][:, :, cols].astype(np.float32)
    hits = np.flatnonzero(real & (pos[:, 0] == agent[0]) & (pos[:, 1] == agent[1]))
    if not len(hits):
        return None
    heat = np.zeros((weights.shape[0], h, w), dtype=np.float32)
    heat[:, pos[real, 0], pos[real, 1]] = weights[:, hits[0], real]
    return heat


def episode_frame(
    policy: nn.Module,
    obs: np.ndarray,
    drawer: ObservationDrawer,
    caption: str = "",
    cell_px: int = CELL_PX,
) -> np.ndarray:
    """One readable frame: the board (agent boxed), then one titled panel per head.

    Args:
        policy: Any policy; head panels are added when it has attention.
        obs: One observation ``[H, W, C]``.
        drawer: The env's drawing methods.
        caption: Text written above the panels (step, action, reward, ...).
        cell_px: Pixels per board cell.

    Returns:
        ``[height, width, 3]`` uint8; the same size for every frame of one policy and env.
    """
    board = drawer.draw(obs, cell_px)
    agent = drawer.agent_cell(obs)
    heat = agent_attention(policy, obs, agent)
    heads = 0 if heat is None else heat.shape[0]
    panel_in = 2.3
    fig, axes = plt.subplots(
        1, 1 + heads, figsize=(panel_in * (1 + heads) + (0.9 if heads else 0.2), panel_in + 0.9),
        squeeze=False, dpi=80,
    )  # fmt: skip
    fig.subplots_adjust(
        left=0.02, right=0.86 if heads else 0.98, top=0.78, bottom=0.03, wspace=0.06
    )
    height, width = obs.shape[:2]
    extent = (0, width, height, 0)  # one unit per board cell
    description = drawer.describe(obs)
    for k, ax in enumerate(axes[0]):
        ax.imshow(board, extent=extent, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if agent is not None:
            ax.add_patch(
                Rectangle((agent[1], agent[0]), 1, 1, fill=False, edgecolor="cyan", linewidth=2)
            )
        if k == 0:
            ax.set_title("board (agent boxed)", fontsize=9)
            continue
        image = ax.imshow(
            heat[k - 1], extent=extent, cmap=HEAT_CMAP, alpha=0.65, vmin=0.0,
            vmax=max(float(heat.max()), 1e-8), interpolation="nearest",
        )  # fmt: skip
        ax.set_title(f"head {k}: agent attends to", fontsize=9)
    if heads:
        bar = fig.add_axes((0.88, 0.08, 0.02, 0.66))
        fig.colorbar(image, cax=bar).set_label("attention weight", fontsize=8)
        bar.tick_params(labelsize=7)
    text = caption + (f"  |  {description}" if description else "")
    fig.suptitle(text, fontsize=10, x=0.02, ha="left", y=0.97)
    return figure_to_array(fig)


def attention_strip(
    policy: nn.Module, obs: np.ndarray, drawer: ObservationDrawer, caption: str = ""
) -> np.ndarray:
    """The frame TensorBoard shows during training (see :func:`episode_frame`)."""
    return episode_frame(policy, obs, drawer, caption)


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
    """Run one episode and write a GIF of it, one readable frame per state.

    Args:
        policy: ``obs [1, *obs_shape] -> (logits [1, A], value [1])``.
        env_id: Any id :func:`~graphrl.envs.make_env` takes.
        env_kwargs: Env keyword arguments.
        out: GIF path.
        seed: Level seed.
        greedy: Argmax actions instead of sampling.
        max_steps: Stop after this many steps.
        fps: Frames per second of the GIF.

    Returns:
        ``{"return", "length", "solved", "frames"}`` of the episode.
    """
    env = make_env(env_id, seed=seed, **env_kwargs)
    drawer = ObservationDrawer(env)
    obs, _ = env.reset(seed=seed)
    policy.eval()
    frames = [episode_frame(policy, obs, drawer, "step 0  |  start")]
    total, length, solved = 0.0, 0, False
    for _ in range(max_steps):
        logits, _ = policy(torch.as_tensor(obs).unsqueeze(0))
        action = logits.argmax(-1) if greedy else Categorical(logits=logits).sample()
        action = int(action.item())
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        length += 1
        caption = (
            f"step {length}  |  action: {drawer.action_name(action)}  |  "
            f"reward {float(reward):+g}  |  return {total:g}"
        )
        if terminated or truncated:
            solved = bool(info.get("solved", False))
            caption += "  |  solved" if solved else "  |  episode over"
        frames.append(episode_frame(policy, obs, drawer, caption))
        if terminated or truncated:
            break
    env.close()
    imageio.mimsave(out, frames, duration=1000 / fps, loop=0)
    return {"return": total, "length": length, "solved": solved, "frames": len(frames)}
