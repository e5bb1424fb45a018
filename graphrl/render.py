"""Episode GIFs whose every frame reads on its own: the observation, one titled panel per
attention head or recurrent query (a heat overlay with a colour scale), and the step, last
action, reward, return and the env's own caption written above (wrapped, never cut).

Every observation kind is drawn (see :class:`~graphrl.envs.ObservationDrawer`): a board
(symbol grid, RGB frame) with the agent boxed and attention as heat on its cells; entities (a
``Box(N, F)`` set, a ``Dict``'s entity set, a ``Graph``'s nodes) as points, attention as heat on
the points and as links to the entities attended to; a flat vector as bars.

Everything env-specific comes from the env itself through
:class:`~graphrl.envs.ObservationDrawer` (how to draw an observation, where the agent is, what
to caption); what attention a policy has comes from its ``returns_attention`` declaration: its
``forward(..., return_attention=True)`` then adds a
:class:`~graphrl.models.frame_attention.FrameAttention` per step (the last relational layer's
heads, or one panel per query of Mott et al.'s agent or per RMC memory slot). Recurrent
policies are stepped with their state carried through the episode and reset when one ends.
"""

from __future__ import annotations

import textwrap
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
from graphrl.envs.drawing import EntityView
from graphrl.graphs.observations import GraphObs, ObsDict
from graphrl.models.distributions import ActionSpec
from graphrl.models.frame_attention import FrameAttention, declares_attention
from graphrl.nn.recurrent import State
from graphrl.rl.recurrent import is_recurrent
from graphrl.viz import figure_to_array, plt

CELL_PX = 24
HEAT_CMAP = "inferno"
PANEL_IN = 2.3  # inches per panel
DPI = 80
CAPTION_LINES = 3  # the caption's room above the panels: wrapped into it, shrunk if need be
CAPTION_PT = 10

__all__ = [
    "PolicyStepper",
    "agent_attention",
    "attention_strip",
    "board_heat",
    "can_draw_attention",
    "choose_action",
    "entity_figure",
    "entity_heat",
    "episode_frame",
    "frame_figure",
    "render_episode",
]


def _to_feature_cell(index: int, size: int, feature_size: int) -> int:
    """Board row (or column) ``index`` -> the feature-map row whose cells cover it best."""
    return round(index * (feature_size - 1) / max(size - 1, 1))


def _batch_of_one(obs: Any, device: torch.device) -> Any:
    """One env's observation (array, dict of arrays, ``GraphInstance``) as a batch of one."""
    if isinstance(obs, gym.spaces.GraphInstance):
        return GraphObs.from_instances((obs,), device)
    if isinstance(obs, dict):
        return ObsDict({k: torch.as_tensor(np.asarray(v)).unsqueeze(0).to(device)
                        for k, v in obs.items()})  # fmt: skip
    return torch.as_tensor(obs).unsqueeze(0).to(device)


def can_draw_attention(policy: nn.Module) -> bool:
    """Whether ``policy`` declares ``returns_attention`` (its ``forward(...,
    return_attention=True)`` then adds a :class:`FrameAttention`)."""
    return declares_attention(policy)


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

    def _batch(self, obs: Any) -> Any:
        """``obs`` as a batch of one (``[1, *obs_shape]``) on the policy's device."""
        return _batch_of_one(obs, self.device)

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
    def _feedforward_attention(self, batch: Any) -> FrameAttention | None:
        """What the policy attends to in ``batch`` (None when it declares no attention)."""
        if not self.attends:
            return None
        return self.policy(batch, return_attention=True)[-1]

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


def entity_heat(
    attention: FrameAttention | None, view: EntityView
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]] | None:
    """The attention of the first frame of ``attention`` on ``view``'s entities, per panel.

    The policy's entities are the observation's, in order (a ``Dict``'s global node, the last
    slot, and a ``Graph``'s padding are left out). Weights with a receiving entity are read
    from the agent's entity when the env names one, else averaged over the present receivers
    (what each entity gets on average); links join each receiver to the entity it attends to
    most.

    Returns:
        ``(heat [P, n], links [P, n, n] or None, titles)``: ``heat[p, j]`` the weight on entity
        ``j``; ``links[p, i, j]`` the weight of ``i`` on ``j`` where drawn (else 0); or None
        when there is no attention.
    """
    if attention is None:
        return None
    n = len(view.points)
    weights = attention.weights[0].float().cpu().numpy()
    present = view.present
    base = tuple(title.split(":")[0] for title in attention.titles)
    if not attention.per_receiver:  # [P, N]: a query's or slot's weight on each entity
        return weights[:, :n], None, attention.titles
    weights = weights[:, :n, :n]  # [P, n, n]
    if view.agent is not None:
        links = np.zeros_like(weights)
        links[:, view.agent] = weights[:, view.agent]
        return weights[:, view.agent], links, tuple(f"{t}: from the agent" for t in base)
    receivers = weights[:, present]  # [P, r, n]
    heat = receivers.mean(1) if receivers.shape[1] else np.zeros(weights.shape[::2])
    links = np.zeros_like(weights)
    strongest = weights.argmax(-1)  # [P, n]
    for p, i in np.argwhere(present[None].repeat(len(weights), 0)):
        links[p, i, strongest[p, i]] = weights[p, i, strongest[p, i]]
    return heat, links, tuple(f"{t}: mean attention received" for t in base)


def _caption(fig: Figure, text: str) -> None:
    """``text`` above the panels, wrapped at ``  |  `` into :data:`CAPTION_LINES` lines of
    the figure's width, the font shrunk until it fits: never cut."""
    width_pt = fig.get_figwidth() * 72 * 0.96
    for size in np.arange(CAPTION_PT, 4.5, -0.5):
        chars = max(int(width_pt / (0.6 * size)), 10)
        lines = _pack(text, chars)
        if len(lines) <= CAPTION_LINES:
            break
    fig.text(0.02, 0.985, "\n".join(lines), fontsize=size, ha="left", va="top", wrap=False)


def _pack(text: str, chars: int) -> list[str]:
    """``text``'s ``  |  ``-separated parts packed into lines of at most ``chars``."""
    lines: list[str] = []
    for part in text.split("  |  "):
        pieces = textwrap.wrap(part, chars) or [""]
        for piece in pieces:
            if lines and len(lines[-1]) + 5 + len(piece) <= chars:
                lines[-1] += "  |  " + piece
            else:
                lines.append(piece)
    return lines


def _figure(panels: int, labelled: bool = False) -> tuple[Figure, np.ndarray]:
    """The frame's figure: ``1 + panels`` square panels, room for the caption above, for tick
    labels (``labelled``) and a colour bar at the right (with panels). Its size depends on
    ``panels`` and ``labelled`` only, so every frame of an episode has the same size."""
    caption_in = CAPTION_LINES * CAPTION_PT * 1.25 / 72 + 0.1
    title_in = 0.3
    left_in, bottom_in = (0.4, 0.4) if labelled else (0.05, 0.1)
    height = PANEL_IN + caption_in + title_in + bottom_in
    width = left_in + PANEL_IN * (1 + panels) + (0.9 if panels else 0.2)
    fig, axes = plt.subplots(1, 1 + panels, figsize=(width, height), squeeze=False, dpi=DPI)
    right = 1 - (0.9 if panels else 0.2) / width
    fig.subplots_adjust(
        left=left_in / width,
        right=right,
        top=1 - (caption_in + title_in) / height,
        bottom=bottom_in / height,
        wspace=0.06,
    )
    return fig, axes[0]


def _colour_bar(fig: Figure, image: Any) -> None:
    right = fig.subplotpars.right
    bottom, top = fig.subplotpars.bottom, fig.subplotpars.top
    bar = fig.add_axes((right + 0.02 * (1 - right) / 0.1, bottom, 0.015, (top - bottom) * 0.9))
    fig.colorbar(image, cax=bar).set_label("attention weight", fontsize=8)
    bar.tick_params(labelsize=7)


def frame_figure(
    obs: np.ndarray,
    drawer: ObservationDrawer,
    heat: np.ndarray | None,
    titles: Sequence[str] = (),
    caption: str = "",
    cell_px: int = CELL_PX,
) -> Figure:
    """One readable frame of a board as a figure: the board (the agent boxed, when the env
    says where it is), then one titled panel per row of ``heat``.

    Args:
        obs: One observation ``[H, W, C]``.
        drawer: The env's drawing methods.
        heat: ``[panels, H, W]`` attention on the board's cells, or None (the board alone).
        titles: One title per panel.
        caption: Text written above the panels (step, action, reward, ...).
        cell_px: Pixels per board cell.

    Returns:
        The figure (axes titled ``"board (agent boxed)"`` or ``"observation"``, then
        ``titles``).
    """
    board = drawer.draw(obs, cell_px)
    agent = drawer.agent_cell(obs)
    panels = 0 if heat is None else heat.shape[0]
    if panels and len(titles) != panels:
        raise ValueError(f"{panels} attention panels but {len(titles)} titles")
    fig, axes = _figure(panels)
    height, width = obs.shape[:2]
    extent = (0, width, height, 0)  # one unit per board cell
    for k, ax in enumerate(axes):
        ax.imshow(board, extent=extent, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if agent is not None:
            ax.add_patch(
                Rectangle((agent[1], agent[0]), 1, 1, fill=False, edgecolor="cyan", linewidth=2)
            )
        if k == 0:
            ax.set_title("board (agent boxed)" if agent is not None else "observation", fontsize=9)
            continue
        image = ax.imshow(
            heat[k - 1], extent=extent, cmap=HEAT_CMAP, alpha=0.65, vmin=0.0,
            vmax=max(float(heat.max()), 1e-8), interpolation="nearest",
        )  # fmt: skip
        ax.set_title(titles[k - 1], fontsize=9)
    if panels:
        _colour_bar(fig, image)
    _caption(fig, _with_description(caption, drawer.describe(obs)))
    return fig


def _with_description(caption: str, description: str) -> str:
    return caption + (f"  |  {description}" if description else "")


def _entity_axes(ax: Any, view: EntityView) -> None:
    """Square limits around the entities, small ticks, the axes named."""
    shown = view.points[view.present] if view.present.any() else view.points
    lo, hi = shown.min(0), shown.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.5) * 1.2
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6, length=2, pad=1)
    ax.grid(alpha=0.25)


def entity_figure(
    obs: Any,
    drawer: ObservationDrawer,
    panels: tuple[np.ndarray, np.ndarray | None, tuple[str, ...]] | None,
    caption: str = "",
) -> Figure:
    """One readable frame of entities as a figure: the entities as numbered points (a graph's
    own edges in grey, the agent ringed), then one panel per head or query with each entity
    coloured by its attention weight and links to the entities attended to.

    Args:
        obs: One observation: ``[N, F]`` rows, a ``Dict`` with an entity set, a
            ``GraphInstance``.
        drawer: The env's drawing methods.
        panels: :func:`entity_heat`'s ``(heat, links, titles)``, or None.
        caption: Text written above the panels.
    """
    view = drawer.entities(obs)
    count = 0 if panels is None else len(panels[0])
    fig, axes = _figure(count, labelled=True)
    heat, links, titles = panels if panels is not None else (None, None, ())
    vmax = max(float(heat.max()), 1e-8) if heat is not None and heat.size else 1.0
    x, y = view.points[:, 0], view.points[:, 1]
    real = np.flatnonzero(view.present)
    for k, ax in enumerate(axes):
        _entity_axes(ax, view)
        if view.edges is not None:
            for i, j in view.edges:
                ax.plot([x[i], x[j]], [y[i], y[j]], color="0.75", lw=1, zorder=1)
        if view.agent is not None:
            ax.scatter(x[view.agent], y[view.agent], s=230, facecolors="none",
                       edgecolors="cyan", linewidths=2, zorder=4)  # fmt: skip
        if k == 0:
            ax.scatter(x[real], y[real], s=70, c=[f"C{i % 10}" for i in real], zorder=3)
            for i in real:
                ax.annotate(str(i), (x[i], y[i]), xytext=(4, 4), textcoords="offset points",
                            fontsize=7)  # fmt: skip
            ax.set_xlabel(view.axes[0], fontsize=7, labelpad=1)
            ax.set_ylabel(view.axes[1], fontsize=7, labelpad=1)
            agent = " (agent ringed)" if view.agent is not None else ""
            ax.set_title(f"{view.kind}: {len(real)} entities{agent}", fontsize=9)
            continue
        ax.set_yticklabels([])
        if links is not None:
            strongest = max(float(links[k - 1].max()), 1e-8)
            for i, j in np.argwhere(links[k - 1] > 0):
                if i != j:
                    ax.annotate("", (x[j], y[j]), (x[i], y[i]), zorder=2, arrowprops={
                        "arrowstyle": "->", "color": "tab:blue",
                        "alpha": float(links[k - 1][i, j]) / strongest, "lw": 1.5})  # fmt: skip
        image = ax.scatter(x[real], y[real], s=70, c=heat[k - 1][real], cmap=HEAT_CMAP,
                           vmin=0.0, vmax=vmax, edgecolors="0.3", zorder=3)  # fmt: skip
        ax.set_title(titles[k - 1], fontsize=9)
    if count:
        _colour_bar(fig, image)
    _caption(fig, _with_description(caption, drawer.describe(obs)))
    return fig


def vector_figure(obs: np.ndarray, drawer: ObservationDrawer, caption: str = "") -> Figure:
    """One frame of a flat observation ``[F]``: one bar per feature."""
    fig, axes = _figure(0, labelled=True)
    values = np.asarray(obs, dtype=np.float64).reshape(-1)
    ax = axes[0]
    ax.bar(np.arange(len(values)), values, color="C0")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("feature", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=6, length=2, pad=1)
    ax.set_title(f"observation: {len(values)} features", fontsize=9)
    _caption(fig, _with_description(caption, drawer.describe(obs)))
    return fig


def _frame(
    obs: Any,
    drawer: ObservationDrawer,
    attention: FrameAttention | None,
    caption: str,
    cell_px: int = CELL_PX,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The frame ``[height, width, 3]`` uint8 and its panel titles, for any layout."""
    layout = drawer.layout(obs)
    if layout == "board":
        heat = board_heat(attention, drawer.agent_cell(obs), obs.shape[:2])
        titles = () if heat is None else attention.titles
        fig = frame_figure(obs, drawer, heat, titles, caption, cell_px)
    elif layout == "entities":
        panels = entity_heat(attention, drawer.entities(obs))
        titles = () if panels is None else panels[2]
        fig = entity_figure(obs, drawer, panels, caption)
    else:
        titles, fig = (), vector_figure(obs, drawer, caption)
    return figure_to_array(fig), titles


def episode_frame(
    policy: nn.Module,
    obs: Any,
    drawer: ObservationDrawer,
    caption: str = "",
    cell_px: int = CELL_PX,
    stepper: PolicyStepper | None = None,
) -> np.ndarray:
    """One readable frame: the observation, then one titled panel per head or query.

    Args:
        policy: Any policy; panels are added when it declares attention.
        obs: One observation (any layout :class:`~graphrl.envs.ObservationDrawer` draws).
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
    obs: Any,
    drawer: ObservationDrawer,
    caption: str = "",
    stepper: PolicyStepper | None = None,
) -> np.ndarray:
    """The frame TensorBoard shows during training (see :func:`episode_frame`)."""
    return episode_frame(policy, obs, drawer, caption, stepper=stepper)


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
        env_id: Any id :func:`~graphrl.envs.make_env` takes.
        env_kwargs: Env keyword arguments.
        out: GIF path.
        seed: Level seed of the first episode.
        greedy: Take the argmax action; by default actions are sampled (as in training and
            ``graphrl evaluate``).
        max_steps: Stop an episode after this many steps.
        fps: Frames per second of the GIF.
        episodes: Number of episodes.

    Returns:
        ``{"return", "length", "solved", "frames", "panels", "episodes"}``: summed return and
        length, whether every episode was solved, the frame count, the attention panels' titles
        and one ``{"seed", "return", "length", "solved"}`` per episode.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(env_id, seed=seed, **env_kwargs)
    try:
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
