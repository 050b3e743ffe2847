"""Lightning-based evaluators, with real training on a small slice of scikit-learn's
digits (shipped with the package, no download): 300 samples, 1-3 epochs."""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
from typing import Any

import cloudpickle
import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from torch.utils.data import DataLoader, TensorDataset

import archsmith.nn as nn
from archsmith.evaluator import (
    Classification,
    Evaluator,
    Lightning,
    MetricError,
    Regression,
    TrialContext,
    trial_context,
)
from archsmith.space import SpaceError, choice


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    # Tiny models: one thread is fastest, and pytest -n 2 on two cores would otherwise oversubscribe.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Data and a tiny model space ------------------------------------------------------------


def _digits() -> tuple[DataLoader, DataLoader]:
    digits = load_digits()
    x = torch.tensor(digits.data[:300], dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target[:300], dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32, shuffle=True, generator=generator)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=60)
    return train, val


TRAIN, VAL = _digits()


class TinyNet(nn.ModelSpace):
    def __init__(self, outputs: int = 10, inputs: int = 64) -> None:
        super().__init__()
        width = nn.ValueChoice([16, 32], label="width")
        self.hidden = nn.Linear(inputs, width)
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.act(self.hidden(x))))


SPACE = TinyNet()
ARCH = {"width": 32, "act": 0}


def frozen(arch: dict[str, Any] = ARCH, space: nn.ModelSpace = SPACE) -> torch.nn.Module:
    torch.manual_seed(0)
    return space.freeze(arch)


def run(evaluator: Evaluator, sample: dict[str, Any] | None = None, stop: Any = None, model: Any = None):
    """Evaluate in a trial; return (returned metric, intermediates, context)."""
    seen: list[tuple[int, Any]] = []
    ctx = TrialContext(
        trial_id=1,
        sample={**ARCH, **(sample or {})},
        on_intermediate=lambda step, metric: seen.append((step, metric)),
        **({"stop_requested": stop} if stop else {}),
    )
    with trial_context(ctx):
        result = evaluator.evaluate(model if model is not None else frozen())
    return result, seen, ctx


def classification(**kwargs: Any) -> Classification:
    kwargs = {"learning_rate": 1e-2, "train_dataloaders": TRAIN, "val_dataloaders": VAL, "max_epochs": 2, **kwargs}
    return Classification(**kwargs)


# Import hygiene -------------------------------------------------------------------------


def test_importing_archsmith_does_not_import_lightning() -> None:
    code = (
        "HEAVY = ('lightning', 'pytorch_lightning', 'lightning_fabric', 'lightning_utilities', 'torchmetrics', 'sklearn')\n"
        "import sys, archsmith, archsmith.evaluator, archsmith.nn, archsmith.space\n"
        "from archsmith.evaluator import FunctionalEvaluator, report_intermediate_result\n"
        "assert 'Classification' in archsmith.evaluator.__all__\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_lazy_names_are_the_lightning_classes() -> None:
    import archsmith.evaluator as evaluator_package
    from archsmith.evaluator import _lightning

    assert evaluator_package.Classification is _lightning.Classification
    assert evaluator_package.Lightning is _lightning.Lightning
    with pytest.raises(AttributeError, match="no attribute 'Classifier'"):
        evaluator_package.Classifier


# Classification -------------------------------------------------------------------------


def test_classification_reports_each_epoch_and_a_final_dict() -> None:
    result, seen, ctx = run(classification(max_epochs=2))
    assert [step for step, _ in seen] == [0, 1]
    for _, metric in seen:
        assert set(metric) == {"val_acc", "val_loss", "train_loss"}  # the evaluator's names, no "default"
    assert result == ctx.final == seen[-1][1]
    assert result["val_acc"] > 0.3  # chance is 0.1
    assert seen[1][1]["train_loss"] < seen[0][1]["train_loss"]


def test_accuracy_matches_the_trained_model() -> None:
    model = frozen()
    result, _, _ = run(classification(max_epochs=1), model=model)
    model.eval()
    x, y = next(iter(VAL))
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
        loss = torch.nn.functional.cross_entropy(model(x), y).item()
    assert result["val_acc"] == pytest.approx(accuracy)
    assert result["val_loss"] == pytest.approx(loss, rel=1e-5)


def test_hyper_parameter_choices_join_the_space_and_resolve_from_the_trial() -> None:
    used: list[float] = []

    def sgd(params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        used.append(lr)
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)

    evaluator = classification(
        learning_rate=choice("lr", [1e-3, 5e-2]),
        max_epochs=choice("epochs", [1, 2]),
        optimizer=sgd,
    )
    assert [leaf.label for leaf in evaluator.search_space_leaves()] == ["lr", "epochs"]
    _, seen, _ = run(evaluator, {"lr": 5e-2, "epochs": 2})
    assert used == [5e-2] and len(seen) == 2
    _, seen, _ = run(evaluator, {"lr": 1e-3, "epochs": 1})
    assert used == [5e-2, 1e-3] and len(seen) == 1


def test_optimizer_name_choice() -> None:
    evaluator = classification(optimizer=choice("opt", ["Adam", "SGD"]), max_epochs=1)
    assert [leaf.label for leaf in evaluator.search_space_leaves()] == ["opt"]
    result, _, _ = run(evaluator, {"opt": "SGD"})
    assert 0.0 <= result["val_acc"] <= 1.0


def test_should_stop_ends_training_after_the_epoch() -> None:
    seen: list[Any] = []
    ctx = TrialContext(1, dict(ARCH), on_intermediate=lambda s, m: seen.append(m), stop_requested=lambda: bool(seen))
    with trial_context(ctx):
        result = classification(max_epochs=5).evaluate(frozen())
    assert len(seen) == 1
    assert result == seen[0]


def test_outside_a_trial_it_trains_with_defaults_and_returns_the_metric() -> None:
    evaluator = classification(learning_rate=choice("lr", [1e-2, 1e-3]), max_epochs=1)
    result = evaluator.evaluate(frozen())
    assert set(result) >= {"val_acc", "val_loss"}


def test_same_seed_same_metric() -> None:
    model = frozen()
    evaluator = classification(max_epochs=1, seed=7)
    first = evaluator.evaluate(copy.deepcopy(model))
    second = evaluator.evaluate(copy.deepcopy(model))
    assert first == second


def test_user_trainer_kwargs_override_defaults_and_callbacks_are_copied_per_trial() -> None:
    class CountEpochs(pl.Callback):
        def __init__(self) -> None:
            self.epochs = 0

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.epochs += 1

    counter = CountEpochs()
    evaluator = classification(max_epochs=2, limit_train_batches=2, callbacks=[counter])
    _, seen, _ = run(evaluator)
    assert len(seen) == 2
    assert counter.epochs == 0  # the trial ran on a copy


def test_validation_not_run_during_fit_is_run_once_at_the_end() -> None:
    result, seen, _ = run(classification(max_epochs=1, check_val_every_n_epoch=5))
    assert seen == []
    assert 0.0 <= result["val_acc"] <= 1.0


def test_datamodule() -> None:
    class Digits(pl.LightningDataModule):
        def train_dataloader(self) -> DataLoader:
            return TRAIN

        def val_dataloader(self) -> DataLoader:
            return VAL

    result, seen, _ = run(Classification(datamodule=Digits(), max_epochs=1, learning_rate=1e-2))
    assert len(seen) == 1 and "val_acc" in result


def test_num_classes_mismatch_names_the_fix() -> None:
    with pytest.raises(ValueError, match=r"num_classes=7.*outputs 10"):
        run(classification(max_epochs=1, num_classes=7))


# Regression -----------------------------------------------------------------------------


def test_regression_reports_mse_to_minimize() -> None:
    data = load_diabetes()
    x = torch.tensor(data.data[:300], dtype=torch.float32)
    y = torch.tensor(data.target[:300], dtype=torch.float32)
    y = (y - y.mean()) / y.std()
    train = DataLoader(TensorDataset(x[:240], y[:240]), batch_size=32)
    val = DataLoader(TensorDataset(x[240:], y[240:]), batch_size=60)
    space = TinyNet(outputs=1, inputs=10)
    model = frozen(space=space)
    evaluator = Regression(learning_rate=1e-2, train_dataloaders=train, val_dataloaders=val, max_epochs=2)
    result, seen, _ = run(evaluator, model=model)
    assert len(seen) == 2
    assert set(result) == {"val_mse", "val_mae", "val_loss", "train_loss"}
    assert result["val_mse"] == pytest.approx(result["val_loss"])
    model.eval()
    xv, yv = next(iter(val))
    with torch.no_grad():
        mse = ((model(xv).squeeze(1) - yv) ** 2).mean().item()  # (N, 1) outputs against (N,) targets
    assert result["val_mse"] == pytest.approx(mse, rel=1e-5)


# Lightning (a user module) --------------------------------------------------------------


class UserModule(pl.LightningModule):
    """Takes the model in __init__ (factory style)."""

    def __init__(self, model: torch.nn.Module, lr: float = 1e-2) -> None:
        super().__init__()
        self.model = model
        self.lr = lr

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self.model(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class SetModelModule(UserModule):
    """NNI style: built without the model, then given it with set_model."""

    def __init__(self, lr: float = 1e-2) -> None:
        pl.LightningModule.__init__(self)
        self.model = None  # type: ignore[assignment]
        self.lr = lr

    def set_model(self, model: torch.nn.Module) -> None:
        self.model = model


def test_lightning_runs_a_user_module_class() -> None:
    evaluator = Lightning(
        UserModule,
        {"max_epochs": choice("epochs", [1, 2])},
        TRAIN,
        VAL,
        module_kwargs={"lr": choice("user_lr", [1e-2, 1e-3])},
        objective="val_acc",
    )
    assert [leaf.label for leaf in evaluator.search_space_leaves()] == ["epochs", "user_lr"]
    result, seen, ctx = run(evaluator, {"epochs": 2, "user_lr": 1e-2})
    assert len(seen) == 2
    assert {"val_acc", "train_loss"} <= set(seen[0][1]) and "default" not in seen[0][1]
    assert result == ctx.final and result["val_acc"] > 0.3
    assert evaluator.primary_metric == "val_acc"


def test_lightning_set_model_instance_is_copied_per_trial() -> None:
    template = SetModelModule()
    evaluator = Lightning(template, {"max_epochs": 1}, train_dataloaders=TRAIN, val_dataloaders=VAL)
    result, seen, _ = run(evaluator)
    assert template.model is None
    assert len(seen) == 1 and "val_acc" in result and "default" not in result
    result, _, _ = run(Lightning(SetModelModule, {"max_epochs": 1}, TRAIN, VAL))  # the class works too
    assert "val_acc" in result


def test_lightning_factory_function_and_should_stop() -> None:
    evaluator = Lightning(lambda model: UserModule(model), {"max_epochs": 4}, TRAIN, VAL, objective="val_acc")
    _, seen, _ = run(evaluator, stop=lambda: True)
    assert len(seen) == 1


def test_lightning_errors_at_evaluate_name_the_fix() -> None:
    with pytest.raises(TypeError, match=r"not a lightning.pytorch.LightningModule"):
        run(Lightning(lambda model: model, {"max_epochs": 1}, TRAIN, VAL))
    with pytest.raises(TypeError, match=r"cannot be built as UserModule\(model, \*\*module_kwargs\).*set_model"):
        run(Lightning(UserModule, {"max_epochs": 1}, TRAIN, VAL, module_kwargs={"learning_rate": 1.0}))
    with pytest.raises(MetricError, match=r"never logged 'accuracy'.*val_acc"):
        run(Lightning(UserModule, {"max_epochs": 1}, TRAIN, VAL, objective="accuracy"))


class InterruptedModule(UserModule):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise KeyboardInterrupt


class FailingModule(UserModule):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise RuntimeError("boom in training_step")


def test_ctrl_c_and_errors_inside_fit_reach_the_caller() -> None:
    # Lightning turns Ctrl-C into sys.exit(1) and ignores SIGINT afterwards; the
    # experiment needs the KeyboardInterrupt (to stop cleanly) and its handler back.
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run(Lightning(InterruptedModule, {"max_epochs": 1}, TRAIN, VAL))
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(RuntimeError, match="boom in training_step"):
        run(Lightning(FailingModule, {"max_epochs": 1}, TRAIN, VAL))


# Shipping to workers --------------------------------------------------------------------


def test_repr_shows_choices_without_evaluating_them() -> None:
    text = repr(classification(learning_rate=choice("lr", [1e-2, 1e-3])))
    assert text.startswith("Classification(criterion='CrossEntropyLoss'") and "label='lr'" in text
    assert repr(Lightning(UserModule, {"max_epochs": 1}, TRAIN)).startswith("Lightning(UserModule")


def test_evaluators_survive_cloudpickle_with_their_data() -> None:
    evaluator = classification(learning_rate=choice("lr", [1e-2, 1e-3]), max_epochs=1)
    again = cloudpickle.loads(cloudpickle.dumps(evaluator))
    assert [leaf.label for leaf in again.search_space_leaves()] == ["lr"]
    result, seen, _ = run(again, {"lr": 1e-2})
    assert len(seen) == 1 and result["val_acc"] > 0.1

    wrapper = Lightning(UserModule, {"max_epochs": 1}, TRAIN, VAL, objective="val_acc", seed=1)
    again_wrapper = cloudpickle.loads(cloudpickle.dumps(wrapper))
    assert run(again_wrapper)[0]["val_acc"] > 0.1


# Errors at construction -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"train_dataloaders": None, "val_dataloaders": None}, "no training data; pass train_dataloaders="),
        ({"val_dataloaders": None}, "no validation data.*val_dataloaders="),
        ({"datamodule": pl.LightningDataModule()}, "either train_dataloaders/val_dataloaders or datamodule"),
        ({"learning_rate": 0}, "learning_rate=0 is not valid; learning_rate must be a positive number"),
        ({"learning_rate": -1e-3}, "learning_rate=-0.001 is not valid"),
        ({"learning_rate": choice("bad_lr", [1e-3, -1.0])}, r"learning_rate=-1.0 \(a value of the choice"),
        ({"learning_rate": "fast"}, "learning_rate='fast'"),
        ({"weight_decay": -0.1}, "weight_decay must be a non-negative number"),
        ({"max_epochs": 0}, "max_epochs must be a positive integer"),
        ({"max_epochs": 1.5}, "max_epochs=1.5"),
        ({"criterion": "cross_entropy"}, "criterion='cross_entropy' is not a loss"),
        ({"criterion": torch.optim.Adam}, "criterion=Adam is not a loss"),
        ({"optimizer": "Adamm"}, "optimizer='Adamm' is not a torch.optim optimizer"),
        ({"optimizer": torch.nn.MSELoss}, "not a torch.optim.Optimizer subclass"),
        ({"optimizer_kwargs": {"lr": 1.0}}, "optimizer_kwargs sets 'lr'.*learning_rate="),
        ({"num_classes": 0}, "num_classes=0 must be a positive integer"),
        ({"max_epoch": 3}, "max_epoch is not an argument of lightning.pytorch.Trainer; did you mean max_epochs"),
    ],
)
def test_classification_construction_errors(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(SpaceError, match=pattern):
        classification(**kwargs)


def test_lightning_construction_errors() -> None:
    with pytest.raises(SpaceError, match=r"without a set_model"):
        Lightning(UserModule(torch.nn.Linear(1, 1)), train_dataloaders=TRAIN)
    with pytest.raises(SpaceError, match=r"no training data"):
        Lightning(UserModule)
    with pytest.raises(SpaceError, match=r"not a LightningModule"):
        Lightning("UserModule", train_dataloaders=TRAIN)
    with pytest.raises(SpaceError, match=r"not both"):
        Lightning(UserModule, train_dataloaders=TRAIN, datamodule=pl.LightningDataModule())
    with pytest.raises(SpaceError, match=r"trainer_kwargs=.*must be a dict"):
        Lightning(UserModule, 5, TRAIN)  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match=r"epochs is not an argument"):
        Lightning(UserModule, {"epochs": 1}, TRAIN)


def test_regression_defaults_to_mse_and_rejects_bad_input() -> None:
    evaluator = Regression(train_dataloaders=TRAIN, val_dataloaders=VAL)
    assert evaluator.criterion is torch.nn.MSELoss
    with pytest.raises(SpaceError, match=r"criterion=.*could not be built with no arguments"):

        class NeedsArgs(torch.nn.Module):
            def __init__(self, scale: float) -> None:
                super().__init__()

        Regression(criterion=NeedsArgs, train_dataloaders=TRAIN, val_dataloaders=VAL)
