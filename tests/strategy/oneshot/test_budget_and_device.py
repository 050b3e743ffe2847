"""Bad arguments of the one-shot algorithms are named when they are built; a
one-shot experiment's config: max_duration bounds it (no epoch starts past
it, and the architectures are ranked), max_trials is refused with the reason,
gpus_per_trial asks for a GPU (refused before anything is written when there is
none), and batches follow the supernet to its device."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from archsmith.experiment import Experiment, ExperimentConfig, ExperimentError, read_experiment
from archsmith.space import SpaceError
from archsmith.strategy import DARTS, GumbelDARTS, Proxyless

from ._spaces import TASKS, evaluator, make


def test_max_trials_is_refused_with_the_reason(tmp_path: Path) -> None:
    task = TASKS["layer_choice"]
    with pytest.raises(ExperimentError, match=r"runs no trials.*max_epochs.*drop max_trials"):
        Experiment(task.make(), evaluator(task), make("darts"), ExperimentConfig(workdir=tmp_path, max_trials=5))


def test_max_duration_stops_after_the_epoch_it_is_reached_and_ranks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = TASKS["layer_choice"]
    config = ExperimentConfig(workdir=tmp_path, seed=0, max_duration=0.001)
    exp = Experiment(task.make(), evaluator(task, epochs=4), make("randomoneshot"), config).run()
    with read_experiment(tmp_path) as store:
        assert len(store.get_meta("oneshot_history")) == 1
        assert store.get_meta("status") == "done"
    assert exp.export_top_models(2)
    assert "max_duration 0.001 reached after epoch 1" in capsys.readouterr().out


def test_gpus_per_trial_without_a_gpu_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    task = TASKS["layer_choice"]
    workdir = tmp_path / "exp"
    exp = Experiment(task.make(), evaluator(task), make("darts"), ExperimentConfig(workdir=workdir, gpus_per_trial=1))
    with pytest.raises(ExperimentError, match="needs 1 GPUs but 0 are visible"):
        exp.run()
    assert not workdir.exists()


@pytest.mark.parametrize("name", ["darts", "randomoneshot"])
def test_an_explicit_device_gives_the_same_search(name: str) -> None:
    task = TASKS["layer_choice"]
    here = make(name).search(task.make(), evaluator(task, epochs=1), seed=0)
    on_cpu = make(name).search(task.make(), evaluator(task, epochs=1), seed=0, device="cpu")
    assert [s for s, _ in here] == [s for s, _ in on_cpu]
    assert [v for _, v in here] == pytest.approx([v for _, v in on_cpu])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DARTS(arc_learning_rate=0), "arc_learning_rate must be positive"),
        (lambda: DARTS(gradient_clip_val=-1.0), "gradient_clip_val must be positive or None"),
        (lambda: DARTS(warmup_epochs=-1), "warmup_epochs must be an integer >= 0"),
        (lambda: DARTS(arch_data="test"), "arch_data must be 'split'"),
        (lambda: DARTS(top_k=0), "top_k must be a positive integer"),
        (lambda: GumbelDARTS(temperature=(1.0, 0.0)), "temperature must be positive"),
        (lambda: Proxyless(arc_learning_rate=-1e-3), "arc_learning_rate must be positive"),
        (lambda: Proxyless(cost="latency"), "cost must be 'params', 'flops', a function"),
        (lambda: Proxyless(cost_weight=-1), "cost_weight must be a number >= 0"),
    ],
)
def test_bad_arguments_are_named_at_construction(build: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=re.escape(message)):
        build()
