"""archsmith.compat.nni: NNI's names accepted and mapped, NNI's habits that
archsmith does otherwise refused with the fix."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

import archsmith
import archsmith.compat.nni as nni
import archsmith.nn as anm
from archsmith.compat.nni import NniCompatError, RetiariiExeConfig, RetiariiExperiment
from archsmith.experiment import ExperimentConfig
from archsmith.experiment._config import NNI_NAMES


@archsmith.model_wrapper
class Tiny(anm.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = anm.Linear(2, anm.ValueChoice([1, 2, 3], label="width"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def width_cls(model_cls: Any) -> float:
    """NNI 2.x: the evaluator instantiates the class."""
    model = model_cls()
    nni.report_final_result(float(model.fc.out_features))
    return None  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def fresh_notes() -> None:
    nni._noted.clear()


def _config(tmp_path: Path, **fields: Any) -> RetiariiExeConfig:
    return RetiariiExeConfig("local", workdir=str(tmp_path / "exp"), **fields)


# RetiariiExeConfig -----------------------------------------------------------------


MAPPED = {
    "max_trial_number": ("max_trials", 3),
    "trial_concurrency": ("concurrency", 2),
    "max_experiment_duration": ("max_duration", "1h"),
    "max_trial_duration": ("trial_timeout", 60),
    "trial_gpu_number": ("gpus_per_trial", 0),
    "experiment_name": ("name", "nni_run"),
    "experiment_working_directory": ("workdir", "somewhere"),
    "random_seed": ("seed", 7),
}


def test_every_mapped_nni_name_of_the_table_is_covered() -> None:
    mapped = {name for name, (ours, _) in NNI_NAMES.items() if ours is not None}
    assert mapped - set(MAPPED) == {"execution_engine", "training_service", "debug"}  # tested on their own


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_nni_field_names_map_to_archsmith_fields_with_a_note_once(name: str, caplog: pytest.LogCaptureFixture) -> None:
    ours, value = MAPPED[name]
    config = RetiariiExeConfig("local")
    with caplog.at_level(logging.WARNING, logger="archsmith.compat.nni"):
        setattr(config, name, value)
        setattr(config, name, value)
    assert getattr(config.to_config(), ours) == value
    assert getattr(config, name) == value
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [f"archsmith.compat.nni: NNI's {name} is archsmith's ExperimentConfig.{ours}"]


def test_config_defaults_run_trials_locally_and_take_archsmith_names() -> None:
    cfg = RetiariiExeConfig("local", direction="maximize", seed=3).to_config()
    assert isinstance(cfg, ExperimentConfig)
    assert (cfg.engine, cfg.direction, cfg.seed) == ("process", "maximize", 3)
    assert RetiariiExeConfig(debug=True).to_config().engine == "inprocess"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("trial_command", "runs the evaluator function itself"),
        ("tuner", "pass a strategy"),
        ("search_space", "model space's choices"),
        ("max_trial_numbr", "no such setting"),
    ],
)
def test_settings_without_an_archsmith_meaning_are_refused(name: str, match: str) -> None:
    with pytest.raises(NniCompatError, match=match):
        setattr(RetiariiExeConfig(), name, 1)


def test_a_mapped_value_is_checked_by_archsmith() -> None:
    config = RetiariiExeConfig(trial_concurrency=0)
    with pytest.raises(archsmith.ArchsmithError, match="concurrency must be an integer >= 1"):
        config.to_config()


def test_training_services() -> None:
    with pytest.raises(NniCompatError, match=r"training service 'remote' is not available.*'local'"):
        RetiariiExeConfig("remote")
    config = RetiariiExeConfig("local")
    config.training_service.use_active_gpu = False  # noted, not an error
    with pytest.raises(NniCompatError, match=r"training_service.gpu_indices is not supported.*CUDA_VISIBLE_DEVICES"):
        config.training_service.gpu_indices = [0]
    with pytest.raises(NniCompatError, match="training service 'openpai'"):
        config.training_service = "openpai"
    with pytest.raises(NniCompatError, match="training_service must be 'local'"):
        config.training_service = 3


def test_execution_engines(caplog: pytest.LogCaptureFixture) -> None:
    config = RetiariiExeConfig()
    with caplog.at_level(logging.WARNING, logger="archsmith.compat.nni"):
        config.execution_engine = "py"
        config.execution_engine = "oneshot"
    assert len(caplog.records) == 1 and "execution_engine is not needed" in caplog.records[0].getMessage()
    assert config.to_config().engine == "process"
    config.execution_engine = "benchmark"
    assert config.to_config().engine == "benchmark"
    for graph in ("base", "cgo"):
        with pytest.raises(NniCompatError, match=f"execution_engine '{graph}' \\(graph-based\\).*drop the line"):
            config.execution_engine = graph


def test_unset_fields_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="max_trial_number"):
        _ = RetiariiExeConfig().max_trial_number


# RetiariiExperiment ----------------------------------------------------------------


def test_a_run_with_nni_calls(tmp_path: Path) -> None:
    exp = RetiariiExperiment(
        Tiny(), nni.retiarii.evaluator.FunctionalEvaluator(width_cls), [], nni.retiarii.strategy.Random()
    )
    config = _config(tmp_path, max_trial_number=3, direction="maximize", random_seed=0)
    exp.run(config, 8081, debug=True)
    assert exp.export_top_models(top_k=2, formatter="dict") == [{"width": 3}, {"width": 2}]
    assert exp.export_top_models(optimize_mode="maximize")[0] == {"width": 3}
    (model,) = exp.export_top_models(formatter="instance")
    assert model.fc.out_features == 3 and type(model.fc) is torch.nn.Linear
    with pytest.raises(NniCompatError, match="optimize_mode='minimize' but the run searched with direction='maximize'"):
        exp.export_top_models(optimize_mode="minimize")
    with pytest.raises(NniCompatError, match="formatter='code' needs NNI's graph engine"):
        exp.export_top_models(formatter="code")


def test_nni_implicit_maximize_is_refused_with_the_fix(tmp_path: Path) -> None:
    exp = RetiariiExperiment(Tiny(), width_cls, None, nni.retiarii.strategy.Random())
    with pytest.raises(NniCompatError, match=r"NNI maximized .* config.direction = 'maximize'"):
        exp.run(_config(tmp_path, max_trial_number=1), debug=True)
    assert not (tmp_path / "exp").exists()  # refused before anything ran


def test_experiment_arguments_are_checked() -> None:
    strategy = nni.retiarii.strategy.Random()
    with pytest.raises(NniCompatError, match="needs an evaluator"):
        RetiariiExperiment(Tiny(), None, [], strategy)
    with pytest.raises(NniCompatError, match="needs a strategy"):
        RetiariiExperiment(Tiny(), width_cls, [])
    with pytest.raises(NniCompatError, match="trainer= is NNI's old name"):
        RetiariiExperiment(Tiny(), width_cls, [], strategy, trainer=object())
    with pytest.raises(NniCompatError, match="decorate Linear with @model_wrapper"):
        RetiariiExperiment(torch.nn.Linear(2, 2), width_cls, [], strategy)
    with pytest.raises(NniCompatError, match="needs a finished run"):
        RetiariiExperiment(Tiny(), width_cls, [], strategy).export_top_models()
    with pytest.raises(NniCompatError, match="config must be a RetiariiExeConfig"):
        RetiariiExperiment(Tiny(), width_cls, [], strategy).run({"max_trial_number": 1})


def test_nas_experiment_takes_config_on_the_experiment(tmp_path: Path) -> None:
    exp = nni.nas.experiment.NasExperiment(Tiny(), width_cls, nni.nas.strategy.GridSearch())
    exp.config.max_trial_number = 3  # the whole (shuffled) grid: the best is then width 1
    exp.config.direction = "minimize"
    exp.config.workdir = str(tmp_path / "exp")
    exp.run(port=8081, debug=True)
    assert exp.export_top_models(top_k=1) == [{"width": 1}]
    with pytest.raises(NniCompatError, match="wait_completion=False"):
        exp.run(wait_completion=False)


def test_debug_mutated_model_evaluates_one_architecture() -> None:
    assert nni.retiarii.experiment.pytorch.debug_mutated_model(Tiny(), width_cls, seed=0) in (1.0, 2.0, 3.0)


# Evaluators, import paths, layers --------------------------------------------------


def test_lightning_evaluators_take_nni_argument_names(caplog: pytest.LogCaptureFixture) -> None:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.zeros(4).long()))
    with caplog.at_level(logging.WARNING, logger="archsmith.compat.nni"):
        cls = nni.retiarii.evaluator.pytorch.lightning.Classification(
            train_dataloader=data, val_dataloaders=data, max_epochs=1
        )
    assert cls.train_dataloaders is data and "train_dataloaders" in caplog.text
    assert callable(cls.fit)
    reg = nni.nas.evaluator.pytorch.Regression(train_dataloader=data, val_dataloader=data)
    assert reg.val_dataloaders is data
    with pytest.raises(NniCompatError, match="give train_dataloader= or train_dataloaders=, not both"):
        nni.Classification(train_dataloader=data, train_dataloaders=data)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("archsmith.compat.nni", ["choice", "report_final_result", "report_intermediate_result", "trace"]),
        ("archsmith.compat.nni.retiarii", ["model_wrapper", "fixed_arch"]),
        ("archsmith.compat.nni.retiarii.nn.pytorch", ["LayerChoice", "InputChoice", "ValueChoice", "Linear"]),
        ("archsmith.compat.nni.retiarii.strategy", ["Random", "RegularizedEvolution", "TPEStrategy", "DARTS"]),
        ("archsmith.compat.nni.retiarii.evaluator", ["FunctionalEvaluator"]),
        ("archsmith.compat.nni.retiarii.evaluator.pytorch.lightning", ["Classification", "DataLoader"]),
        ("archsmith.compat.nni.retiarii.experiment.pytorch", ["RetiariiExperiment", "RetiariiExeConfig"]),
        ("archsmith.compat.nni.nas.nn.pytorch", ["ModelSpace", "LayerChoice", "MutableLinear", "MutableConv2d"]),
        ("archsmith.compat.nni.nas.strategy", ["Random", "GridSearch", "ENAS", "GumbelDARTS"]),
        ("archsmith.compat.nni.nas.evaluator.pytorch", ["Classification", "Regression"]),
        ("archsmith.compat.nni.nas.experiment", ["NasExperiment", "NasExperimentConfig"]),
    ],
)
def test_nni_import_paths(path: str, names: list[str]) -> None:
    module = importlib.import_module(path)
    for name in names:
        assert getattr(module, name) is not None, (path, name)


def test_nni_3_mutable_layers_are_archsmith_layers() -> None:
    assert anm.MutableConv2d is anm.Conv2d and nni.MutableLinear is anm.Linear
    assert {"MutableDropout", "MutableBatchNorm2d", "MutableLayerNorm", "MutableMultiheadAttention"} <= set(anm.__all__)
    layer = anm.MutableLinear(4, archsmith.choice("out", [2, 3]))
    assert isinstance(layer, anm.MutableLayer)
    assert layer.mutable_arguments["out_features"].values == [2, 3]


def test_trace_returns_its_argument() -> None:
    assert nni.trace(torch.nn.Linear) is torch.nn.Linear


class Act(nni.retiarii.Mutator):
    """NNI-style mutator: replace every ReLU by one of two activations."""

    def mutate(self, graph: Any) -> None:
        for node in graph.get_nodes_by_type(torch.nn.ReLU):
            node.replace(self.choice([torch.nn.ReLU(), torch.nn.Tanh()], label="act"))


def sign_sum(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(model(-torch.ones(1, 2)).sum())


def test_applied_mutators_make_the_space(tmp_path: Path) -> None:
    base = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    torch.nn.init.constant_(base[0].weight, 1.0)
    torch.nn.init.zeros_(base[0].bias)
    exp = RetiariiExperiment(base, sign_sum, [Act()], nni.retiarii.strategy.GridSearch())
    exp.run(_config(tmp_path, direction="minimize"), debug=True)
    assert exp.export_top_models(top_k=2) == [{"act": 1}, {"act": 0}]  # tanh(-2) < relu(-2) = 0
    assert isinstance(exp.export_top_models(formatter="instance")[0], torch.nn.Module)


def test_nni_lightning_evaluators_pickle_by_reference() -> None:
    """Worker processes unpickle the evaluator: its class is found by name."""
    import pickle

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.zeros(4).long()))
    cls = nni.Classification(train_dataloader=data, val_dataloaders=data, max_epochs=1)
    blob = pickle.dumps(cls)
    assert b"_Classification" in blob and type(pickle.loads(blob)) is type(cls) is nni._Classification
    with pytest.raises(AttributeError, match="has no attribute '_Nothing'"):
        _ = nni._Nothing


def test_debug_runs_in_process_without_changing_the_callers_config(tmp_path: Path) -> None:
    config = ExperimentConfig(max_trials=1, direction="maximize", workdir=tmp_path / "exp", seed=0)
    exp = RetiariiExperiment(Tiny(), width_cls, [], nni.retiarii.strategy.Random())
    assert exp.run(config, debug=True).config.engine == "inprocess"
    assert config.engine == "process"
