"""Engines register here by name (``ExperimentConfig(engine=...)``)."""

from archsmith._registry import Registry

ENGINES = Registry("engine")
register_engine = ENGINES.register
