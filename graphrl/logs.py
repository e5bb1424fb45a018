"""Reading a run's TensorBoard scalars back (for result tables and learning-curve plots)."""

from __future__ import annotations

import glob
import os


def read_scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    """All scalar series of the TensorBoard event files under ``log_dir``.

    Returns:
        ``{tag: [(step, value), ...]}`` sorted by step.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True)
    if not files:
        raise FileNotFoundError(f"no TensorBoard event files under {log_dir!r}")
    series: dict[str, list[tuple[int, float]]] = {}
    for path in files:
        acc = EventAccumulator(path, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(values) for tag, values in series.items()}
