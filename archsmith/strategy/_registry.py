"""Strategies register here by name; tests parametrize over the registry."""

from archsmith._registry import Registry

STRATEGIES = Registry("strategy")
register_strategy = STRATEGIES.register
