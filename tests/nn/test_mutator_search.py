"""NNI's mutator examples searched end to end by a real Experiment on tiny data."""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import pytest
import torch

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig

from ._mutator_models import BlockMutator, ConvReplacer, MnistNet, ResNetish, SkipInserter

pytestmark = pytest.mark.usefixtures("one_thread")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this module's evaluator by value


def tiny_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(48, 1, 8, 8, generator=g)
    return x, (x.mean((1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()


def train_and_score(model: torch.nn.Module) -> float:
    """A few steps of plain gradient descent, then the training accuracy (no
    torch.optim: its first use imports torch._dynamo, seconds in a fresh worker)."""
    x, y = tiny_data()
    for _ in range(5):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run(space: object, strat: strategy.Strategy, tmp_path: Path, **config: object) -> Experiment:
    exp = Experiment(
        space,  # type: ignore[arg-type]
        FunctionalEvaluator(train_and_score),
        strat,
        ExperimentConfig(workdir=tmp_path, seed=0, direction="maximize", **config),  # type: ignore[arg-type]
    )
    return exp.run()


def test_the_block_mutator_on_placeholders_searched_by_grid(tmp_path: Path) -> None:
    space = nn.mutate(MnistNet(), [BlockMutator("block1"), BlockMutator("block2")])
    exp = run(space, strategy.GridSearch(), tmp_path, engine="inprocess")
    trials = exp.trials()
    assert len(trials) == 6 and all(t.status == "succeeded" for t in trials)
    assert {tuple(sorted(t.sample.items())) for t in trials} == {tuple(sorted(s.items())) for s in space.grid()}
    (best,) = exp.export_top_models(1, formatter="instance")
    assert isinstance(best, torch.fx.GraphModule) and best(torch.zeros(1, 1, 8, 8)).shape == (1, 3)


def test_op_replacement_and_skips_searched_in_worker_processes(tmp_path: Path) -> None:
    """The space travels to the workers as (class, init arguments) and is rebuilt there."""
    space = nn.mutate(ResNetish(), [SkipInserter(), ConvReplacer()])
    exp = run(space, strategy.Random(), tmp_path, engine="process", max_trials=3, trial_timeout=120)
    trials = exp.trials()
    assert len(trials) == 3 and [t.status for t in trials] == ["succeeded"] * 3, [t.error for t in trials]
    for t in trials:
        assert set(t.sample) == set(space.search_space)
    # the driver freezes the same architecture the worker trained
    sample = exp.export_top_models(1)[0]
    assert set(sample) == set(space.search_space)
    assert space.freeze(sample).code == space.freeze(sample).code


def test_experiment_takes_mutators_as_nni_does(tmp_path: Path) -> None:
    exp = Experiment(
        MnistNet(),
        train_and_score,
        strategy.RegularizedEvolution(population_size=2, sample_size=2),
        ExperimentConfig(workdir=tmp_path, seed=0, direction="maximize", engine="inprocess", max_trials=3),
        mutators=[BlockMutator("block1"), BlockMutator("block2")],
    )
    assert isinstance(exp.space, nn.MutatedSpace)
    assert list(exp.search_space) == ["block_mutator/choice_1", "block_mutator_2/choice_1"]
    exp.run()
    assert len(exp.trials()) == 3


def test_a_search_of_a_mutated_space_resumes(tmp_path: Path) -> None:
    def experiment(trials: int) -> Experiment:
        space = nn.mutate(MnistNet(), [BlockMutator("block1"), BlockMutator("block2")])
        config = ExperimentConfig(
            workdir=tmp_path, name="resumed", seed=0, direction="maximize", engine="inprocess", max_trials=trials
        )
        return Experiment(space, FunctionalEvaluator(train_and_score), strategy.Random(), config)

    first = [t.sample for t in experiment(2).run().trials()]
    resumed = experiment(4).run(resume=True).trials()
    assert [t.sample for t in resumed[:2]] == first and len(resumed) == 4
    assert all(t.status == "succeeded" for t in resumed)
