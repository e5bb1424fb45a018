"""The results figures share one style (graphrl.viz) and are redrawn from the tables in
results/ (scripts/plot_results.py): every row a figure names is in its table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from graphrl.viz import chance_line, finish_figure, label_axes, plt, results_figure, seeds_curve

ROOT = Path(__file__).resolve().parents[1]


def _script():
    """scripts/plot_results.py as a module (once; it imports its sibling scripts)."""
    if "plot_results" in sys.modules:
        return sys.modules["plot_results"]
    sys.path.insert(0, str(ROOT / "scripts"))
    path = ROOT / "scripts" / "plot_results.py"
    spec = importlib.util.spec_from_file_location("plot_results", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["plot_results"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(_script().FIGURES))
def test_every_figure_reads_its_rows_from_its_table(name) -> None:
    script = _script()
    spec = script.FIGURES[name]
    starts, window, rows = script.read_window_table(str(ROOT / spec.table))
    assert window > 0 and np.all(np.diff(starts) == window)
    for members in spec.methods.values():
        for row in members:
            assert row in rows and len(rows[row]) == len(starts)
    assert (ROOT / Path(spec.table).parent / f"{name}.png").exists()


def test_the_shared_style_keeps_the_legend_off_the_data(tmp_path) -> None:
    fig, (ax,) = results_figure("an env, 1k env steps")
    seeds_curve(ax, np.arange(5), np.random.default_rng(0).random((3, 5)), "method")
    chance_line(ax, 0.5, "chance")
    label_axes(ax, "env steps", "solve rate", (0, 1))
    finish_figure(fig, str(tmp_path / "f.png"))  # saves and closes it
    assert (tmp_path / "f.png").stat().st_size > 5_000
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["method (3 seeds, mean and range)", "chance"]
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0
    plt.close("all")
