"""Costs in a multi-trial run: ``ExperimentConfig(constraints=..., profilers=...)``."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

import archsmith.nn as nn
from archsmith import strategy
from archsmith.experiment import ConfigError, Experiment, ExperimentConfig, ExperimentError
from archsmith.profiler import FlopsProfiler, NumParamsProfiler, frozen_macs
from archsmith.space import Constraint, SpaceError, pareto_front


class Mlp(nn.ModelSpace):
    """8 -> w1 -> w2 -> 3 (16 architectures)."""

    def __init__(self) -> None:
        super().__init__()
        w1 = nn.ValueChoice([2, 4, 8, 16], label="w1")
        w2 = nn.ValueChoice([2, 4, 8, 16], label="w2")
        self.net = nn.Sequential(nn.Linear(8, w1), nn.ReLU(), nn.Linear(w1, w2), nn.ReLU(), nn.Linear(w2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def width_score(model: torch.nn.Module) -> float:
    """Wider scores higher: a search without a bound drifts to the dearest model."""
    return float(sum(p.numel() for p in model.parameters()))


def config(tmp_path: Path, **kwargs) -> ExperimentConfig:
    return ExperimentConfig(engine="inprocess", workdir=tmp_path / "run", seed=0, **kwargs)


def test_config_refuses_what_is_not_a_constraint_or_a_profiler() -> None:
    with pytest.raises(ConfigError, match="list of constraints"):
        ExperimentConfig(constraints=Constraint(lambda s: True))
    with pytest.raises(ConfigError, match="chained comparison"):
        ExperimentConfig(constraints=[True])
    with pytest.raises(ConfigError, match="not a constraint"):
        ExperimentConfig(constraints=["flops <= 3e8"])
    with pytest.raises(ConfigError, match="dict of metric name"):
        ExperimentConfig(profilers=[NumParamsProfiler(Mlp())])
    with pytest.raises(ConfigError, match="must be a profiler"):
        ExperimentConfig(profilers={"params": 3})
    with pytest.raises(ConfigError, match="not a metric name"):
        ExperimentConfig(profilers={"": len})
    # a plain-number metric next to profilers' costs is fine; next to another metric it is not
    ExperimentConfig(objective={"default": "maximize", "params": "minimize"}, profilers={"params": len})
    with pytest.raises(ConfigError, match="only profilers' names"):
        ExperimentConfig(objective={"default": "maximize", "accuracy": "maximize"})


@pytest.mark.parametrize("make", [strategy.Random, strategy.RegularizedEvolution, strategy.TPE])
def test_no_trial_breaks_the_constraint(tmp_path: Path, make) -> None:
    space = Mlp()
    params = NumParamsProfiler(space)
    bound = 150
    kwargs = {"population_size": 4, "sample_size": 2} if make is strategy.RegularizedEvolution else {}
    cfg = config(tmp_path, max_trials=8, direction="maximize", constraints=[params <= bound])
    exp = Experiment(space, width_score, make(**kwargs), cfg).run()
    trials = exp.trials()
    assert len(trials) == 8
    assert all(t.status == "succeeded" and t.objective <= bound for t in trials)
    assert len({str(t.sample) for t in trials}) > 1  # met by searching, not by one model
    assert cfg.to_dict()["constraints"] == ["params <= 150"]


def test_an_unsatisfiable_constraint_ends_the_run_with_the_smallest_cost(tmp_path: Path) -> None:
    space = Mlp()
    flops = FlopsProfiler(space, torch.zeros(1, 8))
    smallest = min(flops.profile(s) for s in space.search_space.grid())
    cfg = config(tmp_path, max_trials=4, direction="maximize", constraints=[flops <= smallest - 1])
    with pytest.raises(SpaceError, match=f"the smallest flops seen was {smallest:.4g}"):
        Experiment(space, width_score, strategy.Random(), cfg).run()
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("*.db"))  # nothing half-made


def test_a_constraint_on_another_space_is_refused_before_the_run(tmp_path: Path) -> None:
    class Other(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, nn.ValueChoice([2, 3], label="other"))

    other = NumParamsProfiler(Other())
    with pytest.raises(ExperimentError, match="built on this experiment's model space"):
        Experiment(
            Mlp(), width_score, strategy.Random(), config(tmp_path, direction="maximize", constraints=[other <= 10])
        )
    with pytest.raises(ExperimentError, match="built on another model space"):
        Experiment(
            Mlp(), width_score, strategy.Random(), config(tmp_path, direction="maximize", profilers={"p": other})
        )


def test_profilers_are_recorded_and_can_be_objectives(tmp_path: Path) -> None:
    space = Mlp()
    params = NumParamsProfiler(space)
    flops = FlopsProfiler(space, torch.zeros(1, 8))
    cfg = config(
        tmp_path,
        objective={"default": "maximize", "params": "minimize"},
        profilers={"params": params, "flops": flops},
    )
    exp = Experiment(space, lambda model: 1.0, strategy.GridSearch(), cfg)
    assert exp.directions == ("maximize", "minimize")
    exp.run()
    trials = exp.trials()
    assert len(trials) == 16
    for t in trials:
        assert t.metric["params"] == params.profile(t.sample) == t.values[1]
        assert t.metric["flops"] == frozen_macs(space.freeze(t.sample), torch.zeros(1, 8))
    # every trial scores 1.0: the front is the cheapest architecture
    assert exp.pareto_front() == [{"w1": 2, "w2": 2}]


def test_a_profiler_objective_without_direction_is_minimised_and_clashes_are_named(tmp_path: Path) -> None:
    space = Mlp()
    params = NumParamsProfiler(space)
    cfg = config(
        tmp_path,
        max_trials=2,
        objective=["default", "params"],
        direction=["maximize", None],
        profilers={"params": params},
    )
    assert Experiment(space, width_score, strategy.Random(), cfg).directions == ("maximize", "minimize")
    cfg = config(tmp_path, max_trials=2, direction="maximize", profilers={"default": params})
    exp = Experiment(space, width_score, strategy.Random(), cfg).run()
    assert {t.status for t in exp.trials()} == {"failed"}
    assert "rename one of them" in exp.trials()[0].error


def test_resume_with_other_constraints_is_refused(tmp_path: Path) -> None:
    space = Mlp()
    params = NumParamsProfiler(space)
    Experiment(
        space,
        width_score,
        strategy.Random(),
        config(tmp_path, max_trials=2, direction="maximize", constraints=[params <= 200]),
    ).run()
    again = Experiment(
        space,
        width_score,
        strategy.Random(),
        config(tmp_path, max_trials=3, direction="maximize", constraints=[params <= 100]),
    )
    with pytest.raises(ExperimentError, match="constraints: stored"):
        again.run(resume=True)
    same = Experiment(
        space,
        width_score,
        strategy.Random(),
        config(tmp_path, max_trials=3, direction="maximize", constraints=[params <= 200]),
    )
    assert len(same.run(resume=True).trials()) == 3


def test_warm_start_leaves_out_trials_the_constraints_rule_out(tmp_path: Path) -> None:
    space = Mlp()
    params = NumParamsProfiler(space)
    first = Experiment(space, width_score, strategy.GridSearch(), config(tmp_path, direction="maximize")).run()
    assert len(first.trials()) == 16
    cfg = ExperimentConfig(
        engine="inprocess",
        workdir=tmp_path / "second",
        seed=0,
        max_trials=1,
        direction="maximize",
        warm_start=tmp_path / "run",
        constraints=[params <= 100],
    )
    with pytest.warns(UserWarning, match="break this run's constraints"):
        second = Experiment(space, width_score, strategy.Random(), cfg).run()
    kept = [t for t in second.trials() if t.worker and t.worker.startswith("warm-start")]
    assert kept and all(params.profile(t.sample) <= 100 for t in second.trials())


class DigitsCnn(nn.ModelSpace):
    """A tiny CNN for 8x8 digits: 3 widths x 2 kernels x 2 heads (12 architectures)."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([2, 4, 8], label="width")
        self.conv = nn.Conv2d(1, width, nn.ValueChoice([1, 3], label="kernel"), padding="same")
        self.head = nn.LayerChoice(
            {
                "linear": nn.Linear(width * 16, 10),
                "mlp": nn.Sequential(nn.Linear(width * 16, 32), nn.ReLU(), nn.Linear(32, 10)),
            },
            label="head",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0, torch.tensor(digits.target)


def digits_accuracy(model: torch.nn.Module) -> dict[str, float]:
    """Full-batch Adam on 1,000 digits, accuracy on the other 797; deterministic
    (one thread: the same sums in the same order whoever runs it)."""
    x, y = _digits()
    torch.manual_seed(0)
    for p in model.parameters():  # one initialisation per architecture, whoever builds it
        torch.nn.init.normal_(p, std=0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:1000]), y[:1000]).backward()
        optimizer.step()
    with torch.no_grad():
        return {"accuracy": float((model(x[1000:]).argmax(1) == y[1000:]).float().mean())}


def test_an_accuracy_flops_front_on_digits_matches_brute_force(tmp_path: Path) -> None:
    space = DigitsCnn()
    x = torch.zeros(1, 1, 8, 8)
    cfg = config(
        tmp_path, objective={"accuracy": "maximize", "flops": "minimize"}, profilers={"flops": FlopsProfiler(space, x)}
    )
    exp = Experiment(space, digits_accuracy, strategy.NSGAII(population_size=4), cfg).run()
    assert len(exp.trials()) == 12  # the strategy used the space up
    # Brute force, independently: every architecture frozen, trained and counted by torch's counter.
    every = list(space.search_space.grid())
    points = [(digits_accuracy(space.freeze(s))["accuracy"], frozen_macs(space.freeze(s), x)) for s in every]
    front = [every[i] for i in pareto_front(points, ("maximize", "minimize"))]
    assert len(front) >= 2  # a real trade-off, not one model best at both
    key = lambda s: sorted(s.items())  # noqa: E731
    assert sorted(map(key, exp.pareto_front())) == sorted(map(key, front))
