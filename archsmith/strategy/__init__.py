"""Search strategies. Multi-trial strategies follow ask/tell (see ``Strategy``)."""

from ._base import Direction, FinishedTrial, Strategy
from ._random import Random, sample_key
from ._registry import STRATEGIES, register_strategy

__all__ = ["STRATEGIES", "Direction", "FinishedTrial", "Random", "Strategy", "register_strategy", "sample_key"]
