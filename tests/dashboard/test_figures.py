"""The figures' content over real experiments (one objective, two objectives, a
one-shot DARTS run), and that no user string reaches Plotly unescaped."""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path

import pytest

from archsmith.dashboard._data import ExperimentData, NotFound
from archsmith.dashboard._figures import FIGURES, esc, figure
from archsmith.experiment import pareto_trials, read_experiment

from ._runs import XSS_ERROR, XSS_LABEL, XSS_OP, generate_store, multi_run, oneshot_run, single_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExperimentData]:
    base = tmp_path_factory.mktemp("figures")
    made = {
        "single": single_run(base / "single"),
        "multi": multi_run(base / "multi"),
        "oneshot": oneshot_run(base / "oneshot"),
    }
    generate_store(base / "few", 5)
    made["few"] = base / "few"
    return {key: ExperimentData(key, path) for key, path in made.items()}


def test_history_has_each_trial_and_the_best_so_far(runs: dict[str, ExperimentData]) -> None:
    fig = figure(runs["single"], "history")["figure"]
    points, best = fig["data"]
    assert points["x"] == list(range(1, 12)) and len(points["y"]) == 11  # the failed trial has no value
    assert best["y"] == [max(points["y"][: i + 1]) for i in range(11)]
    two = figure(runs["multi"], "history")["figure"]
    assert [t["yaxis"] for t in two["data"]] == ["y", "y", "y2", "y2"] and two["layout"]["grid"]["rows"] == 2
    size_best = two["data"][3]["y"]
    assert size_best == [min(two["data"][2]["y"][: i + 1]) for i in range(len(size_best))]  # minimized


def test_curves_parallel_and_importance(runs: dict[str, ExperimentData]) -> None:
    curves = figure(runs["single"], "curves")["figure"]
    assert len(curves["data"]) == 11 and all(t["x"] == [0, 1, 2] for t in curves["data"])
    parallel = figure(runs["single"], "parallel")["figure"]["data"][0]
    labels = [d["label"] for d in parallel["dimensions"]]
    assert labels == [esc(XSS_LABEL), "act", "acc"]
    assert parallel["dimensions"][1]["ticktext"] == [XSS_OP, "tanh"]  # plain SVG text there (see below)
    assert len(parallel["dimensions"][2]["values"]) == 11
    answer = figure(runs["single"], "importance")
    bars = answer["figure"]["data"][0]
    assert sorted(bars["y"]) == sorted([esc(XSS_LABEL), "act"]) and sum(bars["x"]) == pytest.approx(1.0)
    assert bars["y"][-1] == esc(XSS_LABEL)  # the width decides acc: the most important, drawn last (top)
    assert figure(runs["single"], "importance") == answer  # cached, and seeded: the same again


def test_importance_with_too_few_trials_says_so(runs: dict[str, ExperimentData]) -> None:
    answer = figure(runs["few"], "importance")
    assert answer["figure"] is None and "at least 10 succeeded trials" in answer["message"]


def test_pareto_needs_two_objectives_and_marks_the_front(runs: dict[str, ExperimentData]) -> None:
    assert "several objectives" in figure(runs["single"], "pareto")["message"]
    fig = figure(runs["multi"], "pareto")["figure"]
    others, front = fig["data"]
    with read_experiment(runs["multi"].directory) as store:
        expected = pareto_trials(store)
    assert sorted(front["text"]) == sorted(f"trial {t.id}" for t in expected)
    assert len(others["x"]) + len(front["x"]) == 11


def test_oneshot_figures(runs: dict[str, ExperimentData]) -> None:
    data = runs["oneshot"]
    curves = figure(data, "oneshot_curves")["figure"]
    names = {t["name"] for t in curves["data"]}
    assert {"val_acc", "train_loss"} <= names and all(t["x"] == [1, 2] for t in curves["data"])
    probs = figure(data, "oneshot_probabilities")["figure"]
    assert [t["name"] for t in probs["data"]] == ["zero", "project", "identity"]
    for epoch in range(2):  # a distribution per epoch
        assert sum(t["y"][epoch] for t in probs["data"]) == pytest.approx(1.0)
    assert "one-shot" in figure(runs["single"], "oneshot_curves")["message"]
    assert "curves" in FIGURES and figure(data, "curves")["figure"] is None  # no trial reported steps


def test_no_user_string_reaches_a_figure_unescaped(runs: dict[str, ExperimentData]) -> None:
    raw = (XSS_LABEL, XSS_OP, XSS_ERROR, "<script", "<img")
    for key in ("single", "multi"):
        for name in FIGURES:
            shown = copy.deepcopy(figure(runs[key], name))  # the figure is cached: change a copy
            if name == "parallel" and shown["figure"] is not None:
                # Tick text is the one place Plotly draws as plain SVG text (it does not even decode
                # entities): the names go there as they are; the browser tests see them as text.
                for dimension in shown["figure"]["data"][0]["dimensions"]:
                    dimension.pop("ticktext", None)
            text = json.dumps(shown)
            assert not any(r in text for r in raw), (key, name)
    text = json.dumps(figure(runs["single"], "parallel"))
    assert json.dumps(html.escape(XSS_LABEL, quote=True))[1:-1] in text


def test_unknown_figure(runs: dict[str, ExperimentData]) -> None:
    with pytest.raises(NotFound, match="history"):
        figure(runs["single"], "nope")


def test_figures_follow_new_trials(tmp_path: Path) -> None:
    import random

    from ._runs import add_finished_trial

    writer = generate_store(tmp_path / "live", 40, keep_open=True)
    assert writer is not None
    data = ExperimentData("live", tmp_path / "live")
    try:
        before = len(figure(data, "history")["figure"]["data"][0]["x"])
        rng = random.Random(3)
        added = [add_finished_trial(writer, rng) for _ in range(3)]
        after = figure(data, "history")["figure"]["data"][0]["x"]
        scored = [i for i in added if data.trials[i]["objectives"]]
        assert len(after) == before + len(scored)
    finally:
        data.close()
        writer.close()


def test_cells_are_drawn_from_the_sample() -> None:
    import torch

    import archsmith.nn as nn
    from archsmith.dashboard._architecture import cell_graphs

    class Cells(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            ops = {XSS_OP: torch.nn.Identity(), "relu": torch.nn.ReLU()}
            self.c = nn.Cell(ops, 3, num_ops_per_node=2, num_predecessors=2, label="c")
            self.b = nn.NasBench201Cell(
                {"none": lambda i, o: torch.nn.Identity(), "conv": lambda i, o: torch.nn.Linear(i, o)}, 4, 4, label="b"
            )

    sample = Cells().random(seed=0)
    graphs = {g["label"]: g["figure"] for g in cell_graphs(sample)}
    assert sorted(graphs) == ["b", "c"]
    arcs, labels, nodes = graphs["c"]["data"]
    assert nodes["text"] == ["in 0", "in 1", "node 2", "node 3", "node 4"]
    assert labels["text"] == [esc(sample[f"c/op_{n}_{j}"]) for n in (2, 3, 4) for j in (0, 1)]
    assert arcs["x"].count(None) == 6  # one arc per op: 3 nodes x 2 ops
    starts = [arcs["x"][k * 22] for k in range(6)]  # each arc: 21 points and a break
    assert starts == [sample[f"c/input_{n}_{j}"] for n in (2, 3, 4) for j in (0, 1)]
    arcs, labels, nodes = graphs["b"]["data"]
    assert nodes["text"] == ["in", "node 1", "node 2", "out"] and len(labels["text"]) == 6
    ends = [arcs["x"][k * 22 + 20] for k in range(6)]
    assert all(arcs["x"][k * 22] < end for k, end in enumerate(ends))  # every edge runs forward
    assert XSS_OP not in json.dumps(graphs)
