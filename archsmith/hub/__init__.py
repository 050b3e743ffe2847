"""Ready model spaces of the field and their published architectures.

>>> from archsmith.hub import ProxylessNAS, list_spaces
>>> "proxylessnas" in list_spaces()
True
"""

from archsmith.benchmarks.nasbench201 import NasBench201Space as NasBench201

from ._autoformer import AutoFormer
from ._base import SPACES, HubError, HubSpace, SearchedModel, get_space, list_spaces, register_space
from ._mobilenetv3 import MobileNetV3Space
from ._nasbench101 import NasBench101
from ._nasnet import DARTS, ENAS, NDS, PNAS, AmoebaNet, NASNet
from ._proxylessnas import ProxylessNAS
from ._shufflenet import ShuffleNetSpace

__all__ = [
    "SPACES",
    "AutoFormer",
    "HubError",
    "HubSpace",
    "AmoebaNet",
    "DARTS",
    "ENAS",
    "NASNet",
    "NDS",
    "PNAS",
    "MobileNetV3Space",
    "NasBench101",
    "NasBench201",
    "ProxylessNAS",
    "SearchedModel",
    "ShuffleNetSpace",
    "get_space",
    "list_spaces",
    "register_space",
]
