"""Episode GIFs whose every frame reads on its own: the board with the agent marked, one titled
panel per attention head or recurrent query (a heat overlay with a colour scale), and the step,
last action, reward, return and the env's own caption (the held key on Box-World) written above.

Everything env-specific comes from the env itself through
:class:`~graphrl.envs.ObservationDrawer` (how to draw an observation, where the agent is, what
to caption); what attention a policy has comes from its declarations: a recurrent policy's
``returns_attention`` (it then returns a :class:`~graphrl.models.frame_attention.FrameAttention`
per step, e.g. one panel per query of Mott et al.'s agent), a feed-forward one's processor's
``returns_attention`` (the last layer's heads, from the agent's own entity). Recurrent policies
are stepped with their state carried through the episode and reset when one ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from graphrl.envs import ObservationDrawer, make_env
from graphrl.errors import UsageError
from graphrl.models.distributions import ActionSpec
from graphrl.models.frame_attention import FrameAttention, declares_attention
from graphrl.nn.recurrent import State
from graphrl.rl.recurrent import is_recurrent
from graphrl.viz import figure_to_array, plt

CELL_PX = 24
HEAT_CMAP = "inferno"

__all__ = [
    "PolicyStepper",
    "agent_attention",
    "attention_strip",
    "board_heat",
    "can_draw_attention",
    "check_drawable",
    "episode_frame",
    "frame_figure",
    "render_episode",
]


def _to_feature_cell(index: int, size: int, feature_size: int) -> int:
    """Board row (or column) ``index`` -> the feature-map row whose cells cover it best."""
    return round(index * (feature_size - 1) / max(size - 1, 1))


def _feedforward_attends(policy: nn.Module) -> bool:
    processor = getattr(getattr(policy, "backbone", None), "processor", None)
    return bool(getattr(processor, "returns_attention", False))


def can_draw_attention(policy: nn.Module) -> bool:
    """Whether ``policy`` declares attention that pictures can show (see the module doc)."""
    return declares_attention(policy) if is_recurrent(policy) else _feedforward_attends(policy)


class PolicyStepper:
    """One env's policy, run one observation at a time; a recurrent one carries its state.

    Args:
        policy: A feed-forward policy ``obs -> (logits, value)`` or a recurrent one (see
            :mod:`graphrl.rl.recurrent`).
        state: The recurrent state ``[1, ...]`` per tensor to start from (None: the initial
            state, the next observation opening an episode).
        starts: ``[1]`` bool, whether the next observation opens an episode (with ``state``).
    """

    def __init__(
        self, policy: nn.Module, state: State | None = None, starts: torch.Tensor | None = None
    ) -> None:
        self.policy = policy
        self.device = next((p.device for p in policy.parameters()), torch.device("cpu"))
        self.recurrent = is_recurrent(policy)
        self.attends = can_draw_attention(policy)
        self.reset()
        if state is not None:
            self.state = tuple(s.to(self.device) for s in state)
            self.starts = self.starts if starts is None else starts.to(self.device)

    def reset(self) -> None:
        """The next observation opens an episode: the recurrent state starts afresh."""
        self.state: State = self.policy.initial_state(1, self.device) if self.recurrent else ()
        self.starts = torch.ones(1, dtype=torch.bool, device=self.device)

    def _batch(self, obs: np.ndarray) -> torch.Tensor:
        """``obs`` as a batch of one ``[1, *obs_shape]`` on the policy's device."""
        return torch.as_tensor(obs).unsqueeze(0).to(self.device)

    @torch.no_grad()
    def _recurrent_step(self, batch: torch.Tensor) -> tuple[Any, ...]:
        """``(logits, state, attention or None)`` from the carried state."""
        if self.attends:
            logits, _, state, attention = self.policy(
                batch, self.state, self.starts, return_attention=True
            )
            return logits, state, attention
        logits, _, state = self.policy(batch, self.state, self.starts)
        return logits, state, None

    @torch.no_grad()
    def _feedforward_attention(self, batch: torch.Tensor) -> FrameAttention | None:
        """The last processor layer's heads ``[1, heads, N, N]``."""
        if not self.attends:
            return None
        out = self.policy.backbone(batch, return_attention_weights=True)
        if not out.attention or out.graph is None:
            return None
        weights = out.attention[-1]
        titles = tuple(f"head {h + 1}: agent attends to" for h in range(weights.shape[1]))
        return FrameAttention.of_backbone(out, weights, titles)

    @torch.no_grad()
    def step(self, obs: np.ndarray) -> tuple[torch.Tensor, FrameAttention | None]:
        """Act on ``obs``: ``(logits [1, A], attention)``; the state moves on by one step."""
        batch = self._batch(obs)
        if self.recurrent:
            logits, self.state, attention = self._recurrent_step(batch)
        else:
            logits, attention = self.policy(batch)[0], self._feedforward_attention(batch)
        self.starts = torch.zeros(1, dtype=torch.bool, device=self.device)
        return logits, attention

    def peek(self, obs: np.ndarray) -> FrameAttention | None:
        """The attention the next :meth:`step` on ``obs`` would show; the state stays."""
        batch = self._batch(obs)
        if self.recurrent:
            return self._recurrent_step(batch)[2]
        return self._feedforward_attention(batch)


def board_heat(
    attention: FrameAttention | None, agent: tuple[int, int] | None, board: tuple[int, int]
) -> np.ndarray | None:
    """The attention of the first frame of ``attention`` on the board's cells, per panel.

    Entities are placed by their coordinates, so compacted object sets are drawn where they
    are. Pixel encoders' entities are feature-map cells: each board cell shows the weight of
    the feature cell over it (and the agent's entity is the feature cell over the agent).

    Args:
        attention: A policy's attention (None: nothing to draw).
        agent: The agent's board cell; needed when the weights have a receiving entity (then
            the agent's entity's row is drawn), else unused.
        board: ``(H, W)`` of the observation.

    Returns:
        ``[panels, H, W]`` float weights, or None (no attention, or no agent to read it from).
    """
    if attention is None:
        return None
    weights = attention.weights[0].float().cpu().numpy()  # [P, N] or [P, N, N]
    real = attention.mask[0].cpu().numpy()
    pos = attention.pos[0].round().long().cpu().numpy()  # [N, 2]
    h, w = board
    grid = attention.grid_shape
    if grid is not None and tuple(grid) != (h, w):  # feature-map cells
        fh, fw = grid
        rows = np.array([_to_feature_cell(r, h, fh) for r in range(h)])
        cols = np.array([_to_feature_cell(c, w, fw) for c in range(w)])
        if attention.per_receiver:
            if agent is None:
                return None
            weights = weights[:, rows[agent[0]] * fw + cols[agent[1]], :]
        per_cell = weights.reshape(-1, fh, fw)  # dense over the whole feature map
        return per_cell[:, rows][:, :, cols].astype(np.float32)
    if attention.per_receiver:
        if agent is None:
            return None
        hits = np.flatnonzero(real & (pos[:, 0] == agent[0]) & (pos[:, 1] == agent[1]))
        if not len(hits):
            return None
        weights = weights[:, hits[0], :]
    heat = np.zeros((weights.shape[0], h, w), dtype=np.float32)
    heat[:, pos[real, 0], pos[real, 1]] = weights[:, real]
    return heat


def agent_attention(
    policy: nn.Module, obs: np.ndarray, agent: tuple[int, int] | None
) -> np.ndarray | None:
    """What ``policy`` attends to in ``obs`` (a recurrent one from its initial state), per
    panel, on the board's cells: ``[panels, H, W]`` float weights, or None (see
    :func:`board_heat`)."""
    return board_heat(PolicyStepper(policy).peek(obs), agent, obs.shape[:2])


def frame_figure(
    obs: np.ndarray,
    drawer: ObservationDrawer,
    heat: np.ndarray | None,
    titles: Sequence[str] = (),
    caption: str = "",
    cell_px: int = CELL_PX,
) -> Figure:
    """One readable frame as a figure: the board (agent boxed), then one titled panel per row
    of ``heat``.

    Args:
        obs: One observation ``[H, W, C]``.
        drawer: The env's drawing methods.
        heat: ``[panels, H, W]`` attention on the board's cells, or None (the board alone).
        titles: One title per panel.
        caption: Text written above the panels (step, action, reward, ...).
        cell_px: Pixels per board cell.

    Returns:
        The figure (axes titled ``"board (agent boxed)"``, then ``titles``).
    """
    board = drawer.draw(obs, cell_px)
    agent = drawer.agent_cell(obs)
    panels = 0 if heat is None else heat.shape[0]
    if panels and len(titles) != panels:
        raise ValueError(f"{panels} attention panels but {len(titles)} titles")
    panel_in = 2.3
    fig, axes = plt.subplots(
        1, 1 + panels,
        figsize=(panel_in * (1 + panels) + (0.9 if panels else 0.2), panel_in + 0.9),
        squeeze=False, dpi=80,
    )  # fmt: skip
    fig.subplots_adjust(
        left=0.02, right=0.86 if panels else 0.98, top=0.78, bottom=0.03, wspace=0.06
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
        ax.set_title(titles[k - 1], fontsize=9)
    if panels:
        bar = fig.add_axes((0.88, 0.08, 0.02, 0.66))
        fig.colorbar(image, cax=bar).set_label("attention weight", fontsize=8)
        bar.tick_params(labelsize=7)
    text = caption + (f"  |  {description}" if description else "")
    fig.suptitle(text, fontsize=10, x=0.02, ha="left", y=0.97)
    return fig


def _frame(
    obs: np.ndarray,
    drawer: ObservationDrawer,
    attention: FrameAttention | None,
    caption: str,
    cell_px: int = CELL_PX,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The frame ``[height, width, 3]`` uint8 and its panel titles."""
    heat = board_heat(attention, drawer.agent_cell(obs), obs.shape[:2])
    titles = () if heat is None else attention.titles
    return figure_to_array(frame_figure(obs, drawer, heat, titles, caption, cell_px)), titles


def episode_frame(
    policy: nn.Module,
    obs: np.ndarray,
    drawer: ObservationDrawer,
    caption: str = "",
    cell_px: int = CELL_PX,
    stepper: PolicyStepper | None = None,
) -> np.ndarray:
    """One readable frame: the board (agent boxed), then one titled panel per head or query.

    Args:
        policy: Any policy; panels are added when it declares attention.
        obs: One observation ``[H, W, C]``.
        drawer: The env's drawing methods.
        caption: Text written above the panels (step, action, reward, ...).
        cell_px: Pixels per board cell.
        stepper: Where a recurrent policy's state comes from (None: its initial state).

    Returns:
        ``[height, width, 3]`` uint8; the same size for every frame of one policy and env.
    """
    attention = (stepper or PolicyStepper(policy)).peek(obs)
    return _frame(obs, drawer, attention, caption, cell_px)[0]


def attention_strip(
    policy: nn.Module,
    obs: np.ndarray,
    drawer: ObservationDrawer,
    caption: str = "",
    stepper: PolicyStepper | None = None,
) -> np.ndarray:
    """The frame TensorBoard shows during training (see :func:`episode_frame`)."""
    return episode_frame(policy, obs, drawer, caption, stepper=stepper)


def check_drawable(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """``env_id``'s observations can be drawn as a board (a ``Box``), else one line.

    Raises:
        UsageError: ``Dict`` or ``Graph`` observations (no board to draw).
    """
    from graphrl.envs.vector import env_spaces

    _check_space(env_spaces(env_id, dict(env_kwargs or {}))[0], env_id)


def _check_space(space: gym.Space, env_id: str) -> None:
    if not isinstance(space, gym.spaces.Box):
        raise UsageError(
            f"graphrl render draws Box observations (grids, pixel frames, entity sets); "
            f"{env_id} gives {type(space).__name__} observations, which have no board to draw: "
            "pass another --env_id"
        )


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
    episodes: int = 1,
) -> dict[str, Any]:
    """Run ``episodes`` episodes and write one GIF of them, one readable frame per state.

    Episode ``i`` is the level of seed ``seed + i``; a recurrent policy's state is carried
    from step to step and reset when an episode ends, so the GIF of two episodes is the GIF of
    each rendered alone, one after the other.

    Args:
        policy: ``obs [1, *obs_shape] -> (logits [1, A], value [1])``, or a recurrent policy.
        env_id: Any id :func:`~graphrl.envs.make_env` takes with ``Box`` observations.
        env_kwargs: Env keyword arguments.
        out: GIF path.
        seed: Level seed of the first episode.
        greedy: Argmax actions instead of sampling.
        max_steps: Stop an episode after this many steps.
        fps: Frames per second of the GIF.
        episodes: Number of episodes.

    Returns:
        ``{"return", "length", "solved", "frames", "panels", "episodes"}``: summed return and
        length, whether every episode was solved, the frame count, the attention panels' titles
        and one ``{"seed", "return", "length", "solved"}`` per episode.

    Raises:
        UsageError: The env's observations are not a ``Box`` (no board to draw).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(env_id, seed=seed, **env_kwargs)
    try:
        _check_space(env.observation_space, env_id)
        drawer = ObservationDrawer(env)
        was_training = policy.training
        policy.eval()
        stepper = PolicyStepper(policy)
        frames: list[np.ndarray] = []
        panels: tuple[str, ...] = ()
        rows = []
        for episode in range(episodes):
            episode_frames, episode_panels, row = _run_episode(
                env, drawer, stepper, seed + episode, greedy, max_steps
            )
            frames += episode_frames
            panels = panels or episode_panels
            rows.append(row)
        policy.train(was_training)
    finally:
        env.close()
    imageio.mimsave(out, frames, duration=1000 / fps, loop=0)
    return {
        "return": sum(r["return"] for r in rows),
        "length": sum(r["length"] for r in rows),
        "solved": all(r["solved"] for r in rows),
        "frames": len(frames),
        "panels": list(panels),
        "episodes": rows,
    }


def choose_action(spec: ActionSpec, params: torch.Tensor, greedy: bool) -> Any:
    """The env action for one observation's ``params [1, P]``: the mode or a sample."""
    dist = spec.distribution(params)
    action = spec.to_env(dist.mode() if greedy else dist.sample())[0]
    return int(action) if spec.kind == "discrete" else action


def _run_episode(
    env: gym.Env,
    drawer: ObservationDrawer,
    stepper: PolicyStepper,
    seed: int,
    greedy: bool,
    max_steps: int,
) -> tuple[list[np.ndarray], tuple[str, ...], dict[str, Any]]:
    """One episode from ``env.reset(seed=seed)``: its frames, panel titles and summary."""
    obs, _ = env.reset(seed=seed)
    stepper.reset()
    spec = ActionSpec.from_space(env.action_space, "graphrl render")
    caption = f"seed {seed}  |  step 0  |  start"
    frames, panels = [], ()
    total, length, solved = 0.0, 0, False
    for _ in range(max_steps):
        logits, attention = stepper.step(obs)
        frame, panels = _frame(obs, drawer, attention, caption)
        frames.append(frame)
        action = choose_action(spec, logits, greedy)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        length += 1
        caption = (
            f"seed {seed}  |  step {length}  |  action: {drawer.action_name(action)}  |  "
            f"reward {float(reward):+g}  |  return {total:g}"
        )
        if terminated or truncated:
            solved = bool(info.get("solved", False))
            caption += "  |  solved" if solved else "  |  episode over"
            break
    frames.append(_frame(obs, drawer, stepper.peek(obs), caption)[0])  # the last state
    return frames, panels, {"seed": seed, "return": total, "length": length, "solved": solved}
