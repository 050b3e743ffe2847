"""Callbacks in one-shot searches: a ``OneShotCallback`` sees every epoch and step
in order; the evaluator's Lightning ``EarlyStopping`` stops a one-shot run as it
stops a Trainer (and the run says when and why) and its ``ModelCheckpoint``
saves the supernet with Lightning's top-k and names; every other Lightning callback
or Trainer argument one-shot cannot honour is refused by name before training;
the same evaluator in a multi-trial run keeps all its callbacks."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from torch.utils.data import DataLoader, Dataset

from archsmith.evaluator import TrialContext, trial_context
from archsmith.experiment import Experiment, ExperimentConfig, read_experiment
from archsmith.space import SpaceError
from archsmith.strategy.oneshot import (
    ONESHOT_STRATEGIES,
    MetricEarlyStopping,
    OneShotCallback,
    OneShotState,
)

from ._spaces import ALGORITHMS, TASKS, evaluator, make

TASK = TASKS["layer_choice"]
STEPS_PER_EPOCH = 8  # 256 training samples in batches of 32
#: The algorithms whose constructor takes callbacks (all of them: a test checks it).
WITH_CALLBACKS = [n for n in ALGORITHMS if "callbacks" in inspect.signature(ONESHOT_STRATEGIES[n]).parameters]


def never_improves(patience: int = 1) -> EarlyStopping:
    """Stops after ``patience + 1`` epochs: only the first beats the initial best by 10."""
    return EarlyStopping(monitor="val_loss", patience=patience, min_delta=10.0)


class Recorder(OneShotCallback):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_search_start(self, state: OneShotState) -> None:
        self.events.append(("search_start", state.epoch, state.step))

    def on_epoch_start(self, state: OneShotState) -> None:
        assert state.metrics == {} and state.architecture is None
        self.events.append(("epoch_start", state.epoch))

    def on_step_end(self, state: OneShotState) -> None:
        assert "train_loss" in state.step_metrics and state.supernet is state.algorithm.supernet
        self.events.append(("step", state.epoch, state.batch_index, state.step))

    def on_epoch_end(self, state: OneShotState) -> None:
        assert {"train_loss", "val_acc", "val_loss"} <= set(state.metrics) and "default" not in state.metrics
        assert state.architecture is not None
        state.supernet.search_space.validate(state.architecture)
        self.events.append(("epoch_end", state.epoch))

    def on_search_end(self, state: OneShotState) -> None:
        assert state.ranking is not None
        self.events.append(("search_end", len(state.ranking)))


def steps_per_epoch(algorithm: Any) -> int:
    """Training steps per epoch: one per batch of the algorithm's training data (half
    the loader's where it splits off architecture batches)."""
    return len(algorithm.train_loader)


def expected_events(epochs: int, top_k: int, steps: int = STEPS_PER_EPOCH) -> list[tuple[Any, ...]]:
    events: list[tuple[Any, ...]] = [("search_start", 0, 0)]
    for epoch in range(epochs):
        events.append(("epoch_start", epoch))
        events += [("step", epoch, i, epoch * steps + i + 1) for i in range(steps)]
        events.append(("epoch_end", epoch))
    return [*events, ("search_end", top_k)]


def test_every_algorithm_takes_callbacks() -> None:
    assert WITH_CALLBACKS == ALGORITHMS


@pytest.mark.parametrize("name", WITH_CALLBACKS)
def test_a_callback_sees_every_epoch_and_step_in_order(name: str) -> None:
    first, second = Recorder(), Recorder()
    algorithm = make(name, callbacks=[first, second], top_k=2)
    ranking = algorithm.search(TASK.make(), evaluator(TASK, epochs=2), seed=0)
    steps = steps_per_epoch(algorithm)
    assert steps in (STEPS_PER_EPOCH, STEPS_PER_EPOCH // 2)
    assert first.events == second.events == expected_events(2, len(ranking), steps)


def test_an_early_stopping_callback_stops_the_run_and_the_run_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stopper = never_improves(patience=1)
    config = ExperimentConfig(workdir=tmp_path, seed=0)
    exp = Experiment(TASK.make(), evaluator(TASK, epochs=5, callbacks=[stopper]), make("randomoneshot"), config)
    exp.run()
    with read_experiment(tmp_path) as store:
        assert len(store.get_meta("oneshot_history")) == 2
        assert store.get_meta("status") == "done"
        stopped = store.get_meta("oneshot_stopped")
    assert stopped["after_epoch"] == 1
    assert "val_loss did not improve in the last 1 epochs" in stopped["reason"]
    assert "stopped after epoch 2: val_loss did not improve" in capsys.readouterr().out
    assert exp.export_top_models(2)
    assert stopper.wait_count == 0 and math.isinf(stopper.best_score)  # the user's object is left as given
    exp.run(resume=True)  # a stopped run is over: resuming trains no further epoch
    with read_experiment(tmp_path) as store:
        assert len(store.get_meta("oneshot_history")) == 2
        assert store.get_meta("oneshot_stopped")["after_epoch"] == 1


def test_min_epochs_defers_the_stop_as_in_lightning() -> None:
    strategy = make("randomoneshot")
    strategy.search(TASK.make(), evaluator(TASK, epochs=5, callbacks=[never_improves()], min_epochs=4), seed=0)
    assert strategy.stopped_after == 3


def test_the_same_evaluator_stops_a_lightning_trial_after_as_many_epochs() -> None:
    stopper = never_improves(patience=1)
    classification = evaluator(TASK, epochs=5, callbacks=[stopper])
    strategy = make("randomoneshot")
    ranking = strategy.search(TASK.make(), classification, seed=0)
    assert strategy.stopped_after == 1
    with trial_context(TrialContext(1, dict(ranking[0][0]))) as ctx:  # a multi-trial run's trial
        classification.evaluate(TASK.make().freeze(ranking[0][0]))
    assert len(ctx.intermediates) == 2
    assert classification.trainer_kwargs["callbacks"] == [stopper]


class LightningCounter(pl.Callback):
    epochs: ClassVar[list[int]] = []  # on the class: Lightning evaluators copy callbacks per trial

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        LightningCounter.epochs.append(trainer.current_epoch)


def test_a_refused_callback_still_runs_in_multi_trial_searches(tmp_path: Path) -> None:
    counter = LightningCounter()
    classification = evaluator(TASK, epochs=2, callbacks=[counter])
    with pytest.raises(SpaceError, match=r"callbacks=\[LightningCounter\(\.\.\.\)\].*OneShotCallback"):
        Experiment(TASK.make(), classification, make("randomoneshot"), ExperimentConfig(workdir=tmp_path / "one"))
    LightningCounter.epochs.clear()
    with trial_context(TrialContext(1, {"op": "identity"})):
        classification.evaluate(TASK.make().freeze({"op": "identity"}))
    assert LightningCounter.epochs == [0, 1]
    assert classification.trainer_kwargs["callbacks"] == [counter]


class Untouchable(Dataset[Any]):
    """Training data that fails the test if anything reads it."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> Any:
        raise AssertionError("training started before the refusal")


class Subclassed(EarlyStopping):
    pass


@pytest.mark.parametrize(
    ("kwargs", "named", "instead"),
    [
        ({"callbacks": [ModelCheckpoint(every_n_train_steps=5)]}, r"ModelCheckpoint\(every_n_train_steps=5", "epoch"),
        ({"callbacks": [LearningRateMonitor()]}, r"callbacks=\[LearningRateMonitor", "OneShotCallback"),
        ({"callbacks": TQDMProgressBar()}, r"callbacks=\[TQDMProgressBar", "one line per epoch"),
        ({"callbacks": [never_improves(), Subclassed("val_loss")]}, r"callbacks=\[Subclassed", "plain EarlyStopping"),
        ({"precision": "16-mixed"}, r"precision='16-mixed'", "float32"),
        ({"accumulate_grad_batches": 4}, r"accumulate_grad_batches=4", "larger batch_size"),
        ({"max_steps": 10}, r"max_steps=10", "max_epochs"),
        ({"max_time": "00:00:01:00"}, r"max_time=", "max_duration"),
        ({"limit_train_batches": 2}, r"limit_train_batches=2", "Subset"),
        ({"check_val_every_n_epoch": 2}, r"check_val_every_n_epoch=2", "every epoch"),
        ({"logger": True}, r"logger=True", "oneshot_history"),
        ({"devices": 2}, r"devices=2", "gpus_per_trial"),
        ({"deterministic": True}, r"deterministic=True", "use_deterministic_algorithms"),
    ],
)
def test_what_one_shot_cannot_honour_is_refused_by_name_before_training(
    kwargs: dict[str, Any], named: str, instead: str, tmp_path: Path
) -> None:
    classification = evaluator(TASK, **kwargs)
    classification.train_dataloaders = DataLoader(Untouchable(), batch_size=8)
    message = rf"Classification: .*{named}.*no effect in a one-shot search.*{instead}"
    with pytest.raises(SpaceError, match=message):
        Experiment(TASK.make(), classification, make("randomoneshot"), ExperimentConfig(workdir=tmp_path))
    with pytest.raises(SpaceError, match=message):
        make("enas").search(TASK.make(), classification, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_settings_with_no_effect_on_training_are_accepted() -> None:
    recipe = evaluator(
        TASK,
        accelerator="auto",
        devices=1,
        precision="32-true",
        enable_progress_bar=False,
        log_every_n_steps=3,
        limit_test_batches=2,
        callbacks=[],
    ).training_recipe()
    assert recipe.early_stopping == () and recipe.min_epochs == 0 and recipe.gradient_clip_val is None


def test_the_evaluators_gradient_clipping_is_refused_for_an_algorithm_with_its_own(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match=r"pass DARTS\(gradient_clip_val=0.5\) instead"):
        Experiment(
            TASK.make(), evaluator(TASK, gradient_clip_val=0.5), make("darts"), ExperimentConfig(workdir=tmp_path)
        )


class Weights(OneShotCallback):
    """The supernet's weights when the search starts and after each epoch; whether
    anomaly detection was on in the steps."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.end: dict[str, torch.Tensor] = {}
        self.anomaly: set[bool] = set()

    def on_search_start(self, state: OneShotState) -> None:
        self.start = {k: v.detach().clone() for k, v in state.supernet.state_dict().items()}

    def on_step_end(self, state: OneShotState) -> None:
        self.anomaly.add(torch.is_anomaly_enabled())

    def on_epoch_end(self, state: OneShotState) -> None:
        self.end = {k: v.detach().clone() for k, v in state.supernet.state_dict().items()}

    def moved(self) -> float:
        return max(
            float((self.end[k] - self.start[k]).abs().max()) for k in self.start if self.start[k].is_floating_point()
        )


@pytest.mark.parametrize("name", ["enas", "randomoneshot"])
def test_gradient_clipping_and_anomaly_detection_are_honoured(name: str) -> None:
    free, clipped = Weights(), Weights()
    clipping: dict[str, Any] = {"gradient_clip_val": 1e-9, "gradient_clip_algorithm": "value"}
    for hook, kwargs in ((free, {}), (clipped, clipping)):
        task_evaluator = evaluator(TASK, epochs=1, optimizer="SGD", detect_anomaly=hook is clipped, **kwargs)
        make(name, callbacks=[hook]).search(TASK.make(), task_evaluator, seed=0)
    assert free.moved() > 1e-3
    assert clipped.moved() < 1e-6  # 8 SGD steps of lr 0.05 on gradients of at most 1e-9
    assert free.anomaly == {False} and clipped.anomaly == {True}
    assert not torch.is_anomaly_enabled()


class StopAt(OneShotCallback):
    def __init__(self, epoch: int, step: int | None = None) -> None:
        self.epoch, self.step = epoch, step

    def on_step_end(self, state: OneShotState) -> None:
        if self.step is not None and state.epoch == self.epoch and state.batch_index == self.step:
            state.request_stop("enough steps")

    def on_epoch_end(self, state: OneShotState) -> None:
        if self.step is None and state.epoch == self.epoch:
            state.request_stop("enough epochs")


class Gap(OneShotCallback):
    """Adds a metric of its own to each epoch."""

    def on_epoch_end(self, state: OneShotState) -> None:
        state.metrics["gap"] = state.metrics["val_loss"] - state.metrics["train_loss"]


def test_a_metric_a_callback_adds_is_recorded_and_may_be_monitored(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="gap", patience=1, min_delta=10.0)
    strategy = make("randomoneshot", callbacks=[Gap()])
    config = ExperimentConfig(workdir=tmp_path, seed=0)
    Experiment(TASK.make(), evaluator(TASK, epochs=4, callbacks=[stopper]), strategy, config).run()
    with read_experiment(tmp_path) as store:
        history = store.get_meta("oneshot_history")
    assert len(history) == 2 and all("gap" in epoch for epoch in history)
    assert "gap did not improve" in (strategy.stop_reason or "")


def test_a_stop_asked_after_the_last_epoch_is_no_early_stop() -> None:
    strategy = make("randomoneshot", callbacks=[StopAt(1)])
    strategy.search(TASK.make(), evaluator(TASK, epochs=2), seed=0)
    assert (strategy.stopped_after, strategy.stop_reason) == (None, None)


def test_a_user_callback_may_stop_after_an_epoch_or_a_step() -> None:
    after_epoch, after_step = Recorder(), Recorder()
    strategy = make("randomoneshot", callbacks=[StopAt(1), after_epoch])
    strategy.search(TASK.make(), evaluator(TASK, epochs=4), seed=0)
    assert (strategy.stopped_after, strategy.stop_reason) == (1, "enough epochs")
    assert after_epoch.events[-2] == ("epoch_end", 1)
    strategy = make("enas", callbacks=[StopAt(0, step=2), after_step])
    strategy.search(TASK.make(), evaluator(TASK, epochs=4), seed=0)
    assert (strategy.stopped_after, strategy.stop_reason) == (0, "enough steps")
    assert [e for e in after_step.events if e[0] == "step"][-1] == ("step", 0, 2, 3)
    assert after_step.events[-2] == ("epoch_end", 0)  # the cut epoch is still validated


class Interrupt(OneShotCallback):
    def on_epoch_start(self, state: OneShotState) -> None:
        if state.epoch == 2:
            raise KeyboardInterrupt


def test_a_resumed_search_keeps_the_early_stopping_state(tmp_path: Path) -> None:
    checkpoint = tmp_path / "supernet.pt"
    task_evaluator = evaluator(TASK, epochs=6, callbacks=[never_improves(patience=2)])
    whole = make("randomoneshot")
    whole.search(TASK.make(), task_evaluator, seed=0)
    assert whole.stopped_after == 2
    with pytest.raises(KeyboardInterrupt):
        make("randomoneshot", callbacks=[Interrupt()]).search(
            TASK.make(), task_evaluator, seed=0, checkpoint=checkpoint
        )
    seen = Recorder()
    resumed = make("randomoneshot", callbacks=[seen])
    resumed.search(TASK.make(), task_evaluator, seed=0, checkpoint=checkpoint)
    assert resumed.stopped_after == 2  # waited one epoch before the interruption, one after
    assert seen.events[0] == ("search_start", 2, 2 * STEPS_PER_EPOCH)


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "min", "patience": 2, "min_delta": 0.0},
        {"mode": "max", "patience": 1, "min_delta": 0.5},
        {"mode": "min", "patience": 3, "min_delta": 0.07, "stopping_threshold": 0.2},
        {"mode": "max", "patience": 5, "divergence_threshold": 0.1},
        {"mode": "min", "patience": 5, "check_finite": True},
    ],
)
def test_the_stopping_rule_is_lightnings(settings: dict[str, Any]) -> None:
    values = [1.0, 0.9, 0.95, 0.85, 2.0, 0.1, 0.05, 0.04, math.nan, 0.3, 0.01, 0.6]
    ours = MetricEarlyStopping("m", **settings)
    theirs = EarlyStopping("m", **settings)
    for value in values:
        stop = ours.check(value) is not None
        their_stop, _ = theirs._evaluate_stopping_criteria(torch.tensor(value))  # the rule, without a Trainer
        assert stop == their_stop, value
        assert ours.wait_count == theirs.wait_count
        if stop:
            break


def test_a_monitor_the_search_does_not_report_is_named() -> None:
    strict = evaluator(TASK, epochs=2, callbacks=[EarlyStopping(monitor="val_accuracy")])
    with pytest.raises(SpaceError, match=r"monitors 'val_accuracy'.*\['train_loss', 'val_acc', 'val_loss'\]"):
        make("randomoneshot").search(TASK.make(), strict, seed=0)
    lenient = evaluator(TASK, epochs=2, callbacks=[EarlyStopping(monitor="val_accuracy", strict=False)])
    strategy = make("randomoneshot")
    strategy.search(TASK.make(), lenient, seed=0)
    assert strategy.stopped_after is None


def test_lightning_callbacks_given_to_a_strategy_are_sent_to_the_evaluator() -> None:
    with pytest.raises(
        SpaceError, match=r"EarlyStopping\(\.\.\.\)\] is a Lightning callback.*Classification\(callbacks"
    ):
        make("randomoneshot", callbacks=[never_improves()])
    with pytest.raises(SpaceError, match="callbacks must be a list of OneShotCallback"):
        make("enas", callbacks=Recorder())


class Metrics(OneShotCallback):
    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_epoch_end(self, state: OneShotState) -> None:
        self.epochs.append(dict(state.metrics))


def test_model_checkpoint_keeps_the_best_epochs_under_lightnings_names(tmp_path: Path) -> None:
    saving = ModelCheckpoint(
        dirpath=tmp_path, filename="{epoch}-{val_loss:.4f}", monitor="val_loss", save_top_k=2, save_last=True
    )
    seen = Metrics()
    strategy = make("randomoneshot", callbacks=[seen])
    strategy.search(TASK.make(), evaluator(TASK, epochs=4, callbacks=[saving]), seed=0)
    best = sorted(range(4), key=lambda e: seen.epochs[e]["val_loss"])[:2]
    wanted = {f"epoch={e}-val_loss={seen.epochs[e]['val_loss']:.4f}.ckpt" for e in best}
    assert {p.name for p in tmp_path.iterdir()} == {*wanted, "last.ckpt"}
    for name in wanted:
        saved = torch.load(tmp_path / name, weights_only=False)
        assert saved["metrics"] == seen.epochs[saved["epoch"]] and "algorithm" in saved
        strategy.supernet.load_state_dict(saved["state_dict"])
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 3
    assert saving.best_k_models == {}  # the user's object is left as given


def test_enable_checkpointing_saves_the_latest_epoch_under_default_root_dir(tmp_path: Path) -> None:
    task_evaluator = evaluator(TASK, epochs=2, enable_checkpointing=True, default_root_dir=str(tmp_path))
    make("enas").search(TASK.make(), task_evaluator, seed=0)
    names = [p.name for p in (tmp_path / "checkpoints").iterdir()]
    assert names == [f"epoch=1-step={2 * STEPS_PER_EPOCH}.ckpt"]


def test_a_file_the_search_did_not_write_is_kept_under_a_new_version(tmp_path: Path) -> None:
    (tmp_path / "epoch=0-step=8.ckpt").write_text("someone else's")
    task_evaluator = evaluator(TASK, epochs=1, callbacks=[ModelCheckpoint(dirpath=tmp_path)])
    make("randomoneshot").search(TASK.make(), task_evaluator, seed=0)
    assert (tmp_path / "epoch=0-step=8.ckpt").read_text() == "someone else's"
    assert (tmp_path / "epoch=0-step=8-v1.ckpt").exists()


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")  # as it should
def test_the_same_model_checkpoint_saves_in_a_lightning_trial(tmp_path: Path) -> None:
    classification = evaluator(TASK, epochs=1, callbacks=[ModelCheckpoint(dirpath=tmp_path / "trial")])
    make("randomoneshot").search(TASK.make(), classification, seed=0)
    with trial_context(TrialContext(1, {"op": "identity"})):
        classification.evaluate(TASK.make().freeze({"op": "identity"}))
    ours, lightnings = tmp_path / "trial" / "epoch=0-step=8.ckpt", tmp_path / "trial" / "epoch=0-step=8-v1.ckpt"
    assert sorted((tmp_path / "trial").iterdir()) == [lightnings, ours]  # Lightning's version counter
    assert "architecture" in torch.load(ours, weights_only=False)
    assert "pytorch-lightning_version" in torch.load(lightnings, weights_only=False)


def test_regression_epochs_report_val_mae_as_its_trials_do() -> None:
    from archsmith.evaluator import Regression

    x = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    y = torch.zeros(6, 2)
    data = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    recipe = Regression(train_dataloaders=data, val_dataloaders=data, max_epochs=1).training_recipe()
    metrics = recipe.validate(torch.nn.Identity())
    assert metrics["val_mae"] == pytest.approx(float(x.abs().mean()))
    assert metrics["val_mse"] == pytest.approx(float((x**2).mean()))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_honours_the_evaluators_callbacks(name: str, tmp_path: Path) -> None:
    saving = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss")
    strategy = make(name, top_k=1)
    strategy.search(TASK.make(), evaluator(TASK, epochs=4, callbacks=[never_improves(), saving]), seed=0)
    assert strategy.stopped_after == 1 and "val_loss did not improve" in (strategy.stop_reason or "")
    (path,) = tmp_path.iterdir()
    saved = torch.load(path, weights_only=False)
    strategy.supernet.search_space.validate(saved["architecture"])  # DARTS-like: the most probable one


def test_the_state_gives_the_architecture_probabilities_of_algorithms_that_learn_them() -> None:
    darts, spos = make("darts"), make("randomoneshot")
    for strategy in (darts, spos):
        strategy.search(TASK.make(), evaluator(TASK, epochs=1), seed=0)
    (probabilities,) = OneShotState(darts, 1).probabilities.values()
    assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1.0)
    assert OneShotState(spos, 1).probabilities == {}
