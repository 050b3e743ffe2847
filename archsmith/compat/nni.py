"""NNI's NAS API on archsmith's objects: a script written for NNI Retiarii (2.x) or
NNI 3.0 runs with ``nni`` replaced by ``archsmith.compat.nni`` in its imports::

    import archsmith.compat.nni as nni
    import archsmith.compat.nni.retiarii.nn.pytorch as nn
    from archsmith.compat.nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment

NNI's names are mapped to archsmith's (``max_trial_number`` -> ``max_trials``, ...)
with a note, once per process, of the archsmith spelling. What archsmith does
deliberately otherwise is refused with the NNI habit named: the search direction
is never assumed (NNI maximized), there is no graph engine, and the web view is the separate ``archsmith dashboard``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import types
from collections.abc import Sequence
from typing import Any

import archsmith
import archsmith.nn
import archsmith.strategy
from archsmith.evaluator import (
    Evaluator,
    FunctionalEvaluator,
    TrialContext,
    report_final_result,
    report_intermediate_result,
    trial_context,
)
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.experiment._config import NNI_NAMES
from archsmith.nn import ModelSpace, fixed_arch, model_wrapper
from archsmith.space import ArchsmithError, choice, loguniform, quniform, randint, uniform

logger = logging.getLogger("archsmith.compat.nni")


class NniCompatError(ArchsmithError, ValueError):
    """NNI code relies on something archsmith does otherwise; the message says what to write."""


_noted: set[str] = set()


def note(key: str, message: str) -> None:
    """Log ``message`` once per process (NNI spellings work; this says archsmith's)."""
    if key not in _noted:
        _noted.add(key)
        logger.warning("%s", message)


# Configuration ---------------------------------------------------------------------

#: NNI's execution engines: archsmith always runs the Python model (NNI's "py"),
#: and tells one-shot from multi-trial by the strategy.
_PYTHON_ENGINES = {"py", "python", "pure-python", "oneshot"}
_PLATFORMS = {"local": "process"}
_ARCHSMITH_FIELDS = {
    "max_trials",
    "max_duration",
    "concurrency",
    "engine",
    "trial_timeout",
    "objective",
    "direction",
    "seed",
    "name",
    "workdir",
    "gpus_per_trial",
    "max_attempts",
    "warm_start",
    "constraints",
    "profilers",
}


class TrainingServiceConfig:
    """NNI's ``config.training_service`` (``platform``, ``use_active_gpu``,
    ``gpu_indices``): only the local platform exists here."""

    def __init__(self, platform: str = "local") -> None:
        object.__setattr__(self, "platform", _check_platform(platform))
        object.__setattr__(self, "use_active_gpu", None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "platform":
            value = _check_platform(value)
        elif name == "use_active_gpu":
            note(
                "use_active_gpu",
                "archsmith.compat.nni: training_service.use_active_gpu has no effect: archsmith gives each "
                "trial gpus_per_trial GPUs without checking whether another process uses them",
            )
        else:
            raise NniCompatError(
                f"training_service.{name} is not supported: archsmith runs trials on this machine; "
                "set trial_gpu_number (gpus_per_trial) and CUDA_VISIBLE_DEVICES to choose GPUs"
            )
        object.__setattr__(self, name, value)


def _check_platform(platform: Any) -> str:
    if platform not in _PLATFORMS:
        raise NniCompatError(
            f"NNI's training service {platform!r} is not available: archsmith runs trials on this machine "
            "(RetiariiExeConfig('local'), archsmith's engine='process')"
        )
    return str(platform)


class RetiariiExeConfig:
    """NNI's experiment config with NNI's field names (``experiment_name``,
    ``trial_concurrency``, ``max_trial_number``, ``max_experiment_duration``,
    ``trial_gpu_number``, ``execution_engine``, ``training_service``, ...) and
    archsmith's (``direction``, ``seed``, ...), turned into an
    :class:`~archsmith.experiment.ExperimentConfig` by :meth:`to_config`.

    >>> config = RetiariiExeConfig("local")
    >>> config.max_trial_number = 4
    >>> config.to_config().max_trials
    4
    """

    def __init__(self, training_service_platform: str | None = "local", **fields: Any) -> None:
        object.__setattr__(self, "_fields", {"engine": "process"})
        object.__setattr__(self, "training_service", TrainingServiceConfig(training_service_platform or "local"))
        for name, value in fields.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "training_service":
            if isinstance(value, str):
                value = TrainingServiceConfig(value)
            if not isinstance(value, TrainingServiceConfig):
                raise NniCompatError(f"training_service must be 'local', got {value!r}")
            object.__setattr__(self, name, value)
            return
        if name == "execution_engine":
            self._execution_engine(value)
            return
        if name == "debug":
            self._fields["engine"] = "inprocess" if value else "process"
            return
        if name in _ARCHSMITH_FIELDS:
            self._fields[name] = value
            return
        ours, why = NNI_NAMES.get(name, (None, ""))
        if ours is None:
            raise NniCompatError(
                f"RetiariiExeConfig.{name}: "
                + (why if why else f"no such setting; archsmith's are {sorted(_ARCHSMITH_FIELDS)}")
            )
        note(name, f"archsmith.compat.nni: NNI's {name} is archsmith's ExperimentConfig.{ours}")
        self._fields[ours] = value

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__["_fields"]
        ours = NNI_NAMES.get(name, (name, ""))[0]
        if ours in fields:
            return fields[ours]
        raise AttributeError(f"RetiariiExeConfig has no {name!r} set")

    def _execution_engine(self, value: Any) -> None:
        if value in _PYTHON_ENGINES:
            note(
                "execution_engine",
                "archsmith.compat.nni: execution_engine is not needed: archsmith runs the Python model "
                "(NNI's 'py') and runs one-shot when the strategy is one-shot",
            )
            return
        if value == "benchmark":
            self._fields["engine"] = "benchmark"
            return
        raise NniCompatError(
            f"NNI's execution_engine {value!r} (graph-based) does not exist here: archsmith runs the Python "
            "model; drop the line (and use formatter='dict' or 'instance' instead of 'code')"
        )

    def to_config(self) -> ExperimentConfig:
        """The archsmith config these settings describe."""
        return ExperimentConfig(**self._fields)


#: NNI 3.0's name.
NasExperimentConfig = RetiariiExeConfig


# Experiments -------------------------------------------------------------------------

_DIRECTION_HINT = (
    "NNI maximized the reported metric without being told; archsmith never assumes a direction: "
    "set config.direction = 'maximize' (what NNI did) or 'minimize' on the RetiariiExeConfig"
)


def _model_space(base_model: Any, mutators: Sequence[Any] | None) -> ModelSpace:
    if mutators:  # NNI's applied_mutators: the space archsmith.nn.mutate makes
        return archsmith.nn.mutate(base_model, list(mutators))
    if not isinstance(base_model, ModelSpace):
        raise NniCompatError(
            f"the base model must be a model space: decorate {type(base_model).__name__} with @model_wrapper "
            "(NNI 2.x) or subclass ModelSpace (NNI 3.0)"
        )
    return base_model


def _experiment_config(config: Any) -> ExperimentConfig:
    if config is None:
        return RetiariiExeConfig().to_config()
    if isinstance(config, RetiariiExeConfig):
        return config.to_config()
    if isinstance(config, ExperimentConfig):
        return config
    raise NniCompatError(f"config must be a RetiariiExeConfig or archsmith ExperimentConfig, got {config!r}")


class RetiariiExperiment:
    """NNI's ``RetiariiExperiment(base_model, evaluator, applied_mutators, strategy)``
    over :class:`archsmith.experiment.Experiment` (in ``self.experiment`` after
    :meth:`run`)."""

    def __init__(
        self,
        base_model: Any,
        evaluator: Any = None,
        applied_mutators: Sequence[Any] | None = None,
        strategy: Any = None,
        trainer: Any = None,
    ) -> None:
        if trainer is not None:
            raise NniCompatError(
                "trainer= is NNI's old name and form; pass evaluator=FunctionalEvaluator(fn) or Classification(...)"
            )
        if evaluator is None:
            raise NniCompatError("RetiariiExperiment needs an evaluator (FunctionalEvaluator(fn), Classification(...))")
        if strategy is None:
            raise NniCompatError("RetiariiExperiment needs a strategy, e.g. strategy.Random() or strategy.DARTS()")
        self.space = _model_space(base_model, applied_mutators)
        self.evaluator = evaluator if isinstance(evaluator, Evaluator) else FunctionalEvaluator(evaluator)
        self.strategy = strategy
        self.config: Any = RetiariiExeConfig()
        self.experiment: Experiment | None = None

    def run(self, config: Any = None, port: int | None = 8080, debug: bool = False) -> Experiment:
        """Run the search (NNI's ``exp.run(config, port)``); ``port`` has no effect:
        progress shows in the terminal, and NNI's WebUI is ``archsmith dashboard``
        (a separate command over the stores)."""
        if port not in (None, 8080):
            note(
                "port",
                "archsmith.compat.nni: the run opens no web port; progress shows here, and "
                "`archsmith dashboard` serves the web view (NNI's WebUI) on its own",
            )
        cfg = _experiment_config(self.config if config is None else config)
        if debug:  # trials in this process, where pdb works (the caller's config is left as it was)
            cfg = dataclasses.replace(cfg, engine="inprocess")
        self._check_direction(cfg)
        self.experiment = Experiment(self.space, self.evaluator, self.strategy, cfg)
        return self.experiment.run()

    def _check_direction(self, cfg: ExperimentConfig) -> None:
        if isinstance(self.strategy, archsmith.strategy.OneShotStrategy):
            return  # one-shot ranks by the evaluator's own metric
        for objective, direction in zip(cfg.objectives, cfg.directions):
            known = objective in cfg.profilers or self.evaluator.preferred_direction(objective) is not None
            if direction is None and not known:
                raise NniCompatError(f"say whether a higher {objective!r} is better: {_DIRECTION_HINT}")

    def export_top_models(self, top_k: int = 1, optimize_mode: str | None = None, formatter: str = "dict") -> list[Any]:
        """The ``top_k`` best architectures, best first (``formatter`` ``"dict"``:
        samples, ``"instance"``: frozen models). ``optimize_mode`` may only repeat
        the run's direction."""
        if self.experiment is None:
            raise NniCompatError("export_top_models needs a finished run: call exp.run(config) first")
        if optimize_mode is not None and optimize_mode != self.experiment.direction:
            raise NniCompatError(
                f"optimize_mode={optimize_mode!r} but the run searched with direction="
                f"{self.experiment.direction!r}; the direction is the config's, set before the run"
            )
        if formatter == "code":
            raise NniCompatError("formatter='code' needs NNI's graph engine; use formatter='dict' or 'instance'")
        return self.experiment.export_top_models(top_k=top_k, formatter=formatter)


class NasExperiment(RetiariiExperiment):
    """NNI 3.0's ``NasExperiment(model_space, evaluator, strategy, config=None)``;
    ``exp.config`` takes NNI's field names."""

    def __init__(self, model_space: Any, evaluator: Any, strategy: Any, config: Any = None) -> None:
        super().__init__(model_space, evaluator, None, strategy)
        if config is not None:
            self.config = config

    def run(  # type: ignore[override]
        self, config: Any = None, port: int | None = 8080, wait_completion: bool = True, debug: bool = False
    ) -> Experiment:
        """Run the search; ``wait_completion=False`` is not supported (archsmith's
        run returns when the search ends)."""
        if not wait_completion:
            raise NniCompatError(
                "wait_completion=False: archsmith's run returns when the search ends; run it in a thread"
            )
        return super().run(config, port, debug)


def debug_mutated_model(
    base_model: Any, evaluator: Any, applied_mutators: Sequence[Any] | None = None, seed: int = 0
) -> Any:
    """Evaluate one random architecture in this process, without an experiment
    (NNI's helper of the same name); returns its final metric."""
    space = _model_space(base_model, applied_mutators)
    evaluator = evaluator if isinstance(evaluator, Evaluator) else FunctionalEvaluator(evaluator)
    sample = space.random(seed)
    ctx = TrialContext(0, dict(sample))
    with trial_context(ctx):
        returned = evaluator.evaluate(space.freeze(sample))
    return ctx.final if ctx.final is not None else returned


# Evaluators with NNI's argument names ---------------------------------------------


def _lightning_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    # NNI 2.x spelled the loaders in the singular (Lightning 1.x's names).
    for old, new in (("train_dataloader", "train_dataloaders"), ("val_dataloader", "val_dataloaders")):
        if old in kwargs:
            note(old, f"archsmith.compat.nni: NNI's {old}= is archsmith's {new}=")
            if new in kwargs:
                raise NniCompatError(f"give {old}= or {new}=, not both")
            kwargs[new] = kwargs.pop(old)
    return kwargs


@functools.cache
def _lightning_class(name: str) -> type:
    """archsmith's ``Classification``/``Regression`` with NNI's ``fit(model)`` and
    argument names (built on first use: Lightning is heavy to import)."""
    import archsmith.evaluator

    base: Any = getattr(archsmith.evaluator, name)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **_lightning_kwargs(kwargs))

    def fit(self: Any, model: Any) -> Any:
        """NNI's name: train and score ``model`` (archsmith's ``evaluate``)."""
        return self.evaluate(model)

    # Named ``_Classification`` here, so worker processes unpickle it by reference.
    return type(name, (base,), {"__init__": __init__, "fit": fit, "__module__": __name__, "__qualname__": f"_{name}"})


def __getattr__(name: str) -> Any:
    if name in ("_Classification", "_Regression"):
        return _lightning_class(name[1:])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def Classification(*args: Any, **kwargs: Any) -> Any:
    """archsmith's ``Classification`` accepting NNI's ``train_dataloader=`` and ``fit(model)``."""
    return _lightning_class("Classification")(*args, **kwargs)


def Regression(*args: Any, **kwargs: Any) -> Any:
    """archsmith's ``Regression`` accepting NNI's ``train_dataloader=`` and ``fit(model)``."""
    return _lightning_class("Regression")(*args, **kwargs)


def trace(obj: Any) -> Any:
    """NNI's ``nni.trace``: archsmith pickles what it ships, so nothing needs tracing."""
    return obj


# NNI's import paths -------------------------------------------------------------------

#: NNI's strategy names -> archsmith's strategies.
STRATEGIES: dict[str, Any] = {
    "Random": archsmith.strategy.Random,
    "GridSearch": archsmith.strategy.GridSearch,
    "RegularizedEvolution": archsmith.strategy.RegularizedEvolution,
    "TPE": archsmith.strategy.TPE,
    "TPEStrategy": archsmith.strategy.TPE,
    "PolicyBasedRL": archsmith.strategy.PolicyBasedRL,
    "DARTS": archsmith.strategy.DARTS,
    "GumbelDARTS": archsmith.strategy.GumbelDARTS,
    "ENAS": archsmith.strategy.ENAS,
    "RandomOneShot": archsmith.strategy.RandomOneShot,
    "Proxyless": archsmith.strategy.Proxyless,
}


def _module(name: str, doc: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(f"{__name__}.{name}", doc)
    module.__dict__.update(attrs)
    sys.modules[module.__name__] = module
    parent_name, _, child = name.rpartition(".")
    parent = sys.modules[f"{__name__}.{parent_name}"] if parent_name else sys.modules[__name__]
    setattr(parent, child, module)
    return module


def _alias(name: str, module: types.ModuleType) -> None:
    """``{__name__}.{name}`` imports as ``module`` itself."""
    sys.modules[f"{__name__}.{name}"] = module
    parent_name, _, child = name.rpartition(".")
    setattr(sys.modules[f"{__name__}.{parent_name}"], child, module)


def _evaluator_modules(prefix: str) -> None:
    from torch.utils.data import DataLoader

    _module(f"{prefix}.evaluator", "NNI's evaluators.", FunctionalEvaluator=FunctionalEvaluator)
    lightning = {"Classification": Classification, "Regression": Regression, "DataLoader": DataLoader}
    _module(f"{prefix}.evaluator.pytorch", "NNI's Lightning evaluators.", **lightning)
    _module(f"{prefix}.evaluator.pytorch.lightning", "NNI's Lightning evaluators.", **lightning)


def _build_modules() -> None:
    space_names = {
        "model_wrapper": model_wrapper,
        "fixed_arch": fixed_arch,
        "trace": trace,
        "Mutator": archsmith.nn.Mutator,
    }
    # NNI 2.x: nni.retiarii...
    _module("retiarii", "NNI 2.x's nni.retiarii.", **space_names)
    _module("retiarii.nn", "NNI 2.x's nni.retiarii.nn.")
    _alias("retiarii.nn.pytorch", archsmith.nn)
    _module("retiarii.strategy", "NNI 2.x's strategies.", **STRATEGIES)
    _evaluator_modules("retiarii")
    experiment = {
        "RetiariiExperiment": RetiariiExperiment,
        "RetiariiExeConfig": RetiariiExeConfig,
        "debug_mutated_model": debug_mutated_model,
    }
    _module("retiarii.experiment", "NNI 2.x's experiments.")
    _module("retiarii.experiment.pytorch", "NNI 2.x's experiments.", **experiment)
    # NNI 3.0: nni.nas...
    _module("nas", "NNI 3.0's nni.nas.", **space_names)
    _module("nas.nn", "NNI 3.0's nni.nas.nn.")
    _alias("nas.nn.pytorch", archsmith.nn)
    _module("nas.strategy", "NNI 3.0's strategies.", **STRATEGIES)
    _evaluator_modules("nas")
    _module(
        "nas.experiment", "NNI 3.0's experiments.", NasExperiment=NasExperiment, NasExperimentConfig=NasExperimentConfig
    )


_build_modules()

__all__ = [
    "Classification",
    "NasExperiment",
    "NasExperimentConfig",
    "NniCompatError",
    "Regression",
    "RetiariiExeConfig",
    "RetiariiExperiment",
    "STRATEGIES",
    "TrainingServiceConfig",
    "choice",
    "debug_mutated_model",
    "fixed_arch",
    "loguniform",
    "model_wrapper",
    "quniform",
    "randint",
    "report_final_result",
    "report_intermediate_result",
    "trace",
    "uniform",
]

# NNI 3.0 exported its mutable layers from nni.nas.nn.pytorch; they are archsmith.nn's.
globals().update(archsmith.nn.NNI_LAYER_NAMES)
