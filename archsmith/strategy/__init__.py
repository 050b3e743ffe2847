"""Search strategies. Multi-trial strategies follow ask/tell (see ``Strategy``);
one-shot ones (``strategy.oneshot``) train a supernet (see ``OneShotStrategy``)."""

from archsmith.space import crowding_distance, dominates, non_dominated_sort, pareto_front, pareto_order

from ._base import Direction, Directions, FinishedTrial, Strategy
from ._dedup import sample_key
from ._early_stopping import EarlyStopping, Hyperband, MedianStop, SuccessiveHalving
from ._evolution import RegularizedEvolution
from ._grid import GridSearch
from ._optuna import NSGAII, TPE, OptunaStrategy
from ._random import Random
from ._registry import STRATEGIES, register_strategy
from ._rl import PolicyBasedRL
from .oneshot import DARTS, ENAS, GumbelDARTS, OneShotStrategy, Proxyless, RandomOneShot

__all__ = [
    "DARTS",
    "ENAS",
    "GumbelDARTS",
    "OneShotStrategy",
    "Proxyless",
    "RandomOneShot",
    "EarlyStopping",
    "Hyperband",
    "MedianStop",
    "SuccessiveHalving",
    "STRATEGIES",
    "Direction",
    "Directions",
    "FinishedTrial",
    "GridSearch",
    "NSGAII",
    "OptunaStrategy",
    "PolicyBasedRL",
    "Random",
    "RegularizedEvolution",
    "Strategy",
    "TPE",
    "register_strategy",
    "sample_key",
    "crowding_distance",
    "dominates",
    "non_dominated_sort",
    "pareto_front",
    "pareto_order",
]
