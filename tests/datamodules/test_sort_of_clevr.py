"""Sort-of-CLEVR: every question type against a naive loop, scene layout, sizes, errors."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules import QUESTION_TYPES, SortOfClevrDataModule, SortOfClevrTask, answer_vocab


def decode(x_row: torch.Tensor, num_colors: int) -> dict:
    """One object's row -> its colour, shape, position and the question, from the layout."""
    colour, shape, pos, qtype, qcolour = x_row.split([num_colors, 2, 2, 6, num_colors])
    return {
        "colour": int(colour.argmax()),
        "shape": int(shape.argmax()),
        "pos": pos.tolist(),
        "qtype": int(qtype.argmax()),
        "qcolour": int(qcolour.argmax()),
    }


def naive_answer(objects: list[dict], vocab: list[str]) -> str:
    qtype = QUESTION_TYPES[objects[0]["qtype"]]
    (q,) = [o for o in objects if o["colour"] == objects[0]["qcolour"]]
    shapes = ["square", "circle"]
    others = [o for o in objects if o is not q]

    def dist(o: dict) -> float:
        return math.dist(o["pos"], q["pos"])

    if qtype == "shape":
        return shapes[q["shape"]]
    if qtype == "horizontal":
        return "yes" if q["pos"][0] < 0.5 else "no"
    if qtype == "vertical":
        return "yes" if q["pos"][1] < 0.5 else "no"
    if qtype == "nearest_shape":
        return shapes[min(others, key=dist)["shape"]]
    if qtype == "farthest_shape":
        return shapes[max(others, key=dist)["shape"]]
    return str(sum(o["shape"] == q["shape"] for o in objects))


@pytest.mark.parametrize(("num_objects", "num_colors"), [(6, 6), (2, 6), (10, 10)])
def test_every_question_type_matches_a_naive_loop(num_objects: int, num_colors: int) -> None:
    task = SortOfClevrTask(num_colors=num_colors)
    batch = task.sample(600, num_objects, torch.Generator().manual_seed(num_objects))
    vocab = answer_vocab(num_colors)
    per_type = torch.bincount(batch["question_type"], minlength=len(QUESTION_TYPES))
    assert (per_type > 60).all()  # every type is drawn, about 1/6 each
    for b in range(600):
        objects = [decode(row, num_colors) for row in batch["x"][b]]
        assert objects[0]["qtype"] == int(batch["question_type"][b])
        assert vocab[int(batch["y"][b])] == naive_answer(objects, vocab)


def test_scenes_follow_the_documented_layout() -> None:
    task = SortOfClevrTask(num_colors=8)
    batch = task.sample(500, 8, torch.Generator().manual_seed(0))
    x, pos = batch["x"], batch["pos"]
    assert x.shape == (500, 8, 2 * 8 + 10) == (500, 8, task.num_features)
    assert pos.shape == (500, 8, 2) and x.dtype == pos.dtype == torch.float32
    assert torch.equal(x[..., 10:12], pos)
    assert batch["mask"].dtype == torch.bool and batch["mask"].all()
    assert batch["y"].dtype == batch["question_type"].dtype == torch.long
    colour, shape, _, qtype, qcolour = x.split([8, 2, 2, 6, 8], dim=-1)
    for hot in (colour, shape, qtype, qcolour):
        assert (hot.sum(-1) == 1).all()
    assert (colour.sum(1) <= 1).all()  # colours are distinct within a scene
    assert (qtype == qtype[:, :1]).all() and (qcolour == qcolour[:, :1]).all()
    assert ((qcolour[:, :1] * colour).sum((1, 2)) == 1).all()  # the asked colour is present
    assert ((pos > 0) & (pos < 1)).all()
    gaps = torch.cdist(pos, pos) + torch.eye(8) * 10
    assert gaps.min() >= 0.4 / task.grid_size - 1e-6  # objects do not overlap
    assert batch["y"].max() < len(answer_vocab(8))


def test_feature_and_answer_sizes_do_not_depend_on_num_objects() -> None:
    dm = SortOfClevrDataModule(
        num_objects=4, eval_num_objects=[4, 7, 10], num_colors=10, batch_size=16, val_samples=32
    )
    assert dm.eval_dataloader_names == ["n4", "n7", "n10"]
    assert (dm.num_features, dm.num_classes, dm.pos_dim, dm.answer) == (30, 14, 2, "label")
    assert dm.answer_vocab[:4] == ["square", "circle", "yes", "no"]
    assert dm.answer_vocab[4:] == [str(c) for c in range(1, 11)]
    assert dm.question_types == list(QUESTION_TYPES)
    assert dm.relational_question_types == ["nearest_shape", "farthest_shape", "count"]
    for n, loader in zip([4, 7, 10], dm.val_dataloader()):
        for batch in loader:
            assert batch["x"].shape == (16, n, 30) and batch["pos"].shape == (16, n, 2)
    assert next(iter(dm.train_dataloader()))["x"].shape == (16, 4, 30)


def test_splits_are_deterministic_and_disjoint() -> None:
    def batches(seed: int) -> list[torch.Tensor]:
        dm = SortOfClevrDataModule(batch_size=8, seed=seed)
        return [
            next(iter(dm.train_dataloader()))["x"],
            next(iter(dm.val_dataloader()[0]))["x"],
            next(iter(dm.test_dataloader()[0]))["x"],
        ]

    a, b = batches(7), batches(7)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2])
    assert not torch.equal(a[0], batches(8)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_objects": 7}, r"num_objects must lie in 2\.\.num_colors=6 .* raise num_colors"),
        ({"num_objects": 1}, "num_objects must lie"),
        ({"eval_num_objects": [6, 9]}, r"eval_num_objects .* got \[9\]"),
        ({"num_colors": 1}, "num_colors must be >= 2"),
        ({"train_samples_per_epoch": 0}, "train_samples_per_epoch must be >= 1"),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        SortOfClevrDataModule(**kwargs)


def test_sample_rejects_more_objects_than_colours() -> None:
    with pytest.raises(ValueError, match="num_colors=4"):
        SortOfClevrTask(num_colors=4).sample(2, 5, torch.Generator())
