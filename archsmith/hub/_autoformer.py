"""AutoFormer (Chen et al., ICCV 2021, https://arxiv.org/abs/2107.00651).

A vision transformer whose embedding width, depth, and per-layer head count and
MLP ratio are searched. Heads have a fixed width of 64 (as in the official code),
attention adds 2D relative position encodings, and the image representation is the
mean of the patch tokens. Arguments and labels follow NNI 3.0's
``nni.nas.hub.pytorch.AutoFormer`` (``embed_dim``, ``depth``, ``mlp_ratio_{i}``,
``num_head_{i}``), and the module names are NNI's, so its samples and converted
state dicts load unchanged.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

import archsmith.nn as nn
from archsmith.space import to_int

from ._base import HubError, HubSpace, SearchedModel, register_space

#: the official head width; the number of heads sets the attention's inner width
HEAD_DIM = 64

#: the search spaces of the paper's three sizes (NNI's ``AutoFormer.preset``)
PRESETS: dict[str, dict[str, tuple[Any, ...]]] = {
    "tiny": {
        "search_embed_dim": (192, 216, 240),
        "search_mlp_ratio": (3.0, 3.5, 4.0),
        "search_num_heads": (3, 4),
        "search_depth": (12, 13, 14),
    },
    "small": {
        "search_embed_dim": (320, 384, 448),
        "search_mlp_ratio": (3.0, 3.5, 4.0),
        "search_num_heads": (5, 6, 7),
        "search_depth": (12, 13, 14),
    },
    "base": {
        "search_embed_dim": (528, 576, 624),
        "search_mlp_ratio": (3.0, 3.5, 4.0),
        "search_num_heads": (8, 9, 10),
        "search_depth": (14, 15, 16),
    },
}


class DropPath(torch.nn.Module):
    """Stochastic depth: drops a sample's whole residual branch with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class RelativePosition2D(torch.nn.Module):
    """Learned embeddings of the row and column distances between patches (clipped to
    ``length``); index 0 is reserved for pairs involving the class token."""

    def __init__(self, head_dim: int, length: int = 14) -> None:
        super().__init__()
        self.length = length
        self.embeddings_table_v = torch.nn.Parameter(torch.empty(2 * length + 2, head_dim))
        self.embeddings_table_h = torch.nn.Parameter(torch.empty(2 * length + 2, head_dim))
        torch.nn.init.trunc_normal_(self.embeddings_table_v, std=0.02)
        torch.nn.init.trunc_normal_(self.embeddings_table_h, std=0.02)

    def forward(self, length_q: int, length_k: int) -> torch.Tensor:
        rows, cols = _relative_indices(length_q, length_k, self.length, self.embeddings_table_v.device)
        return F.embedding(rows, self.embeddings_table_v) + F.embedding(cols, self.embeddings_table_h)

    # The two products attention needs, without materialising the (n, n, d) embeddings
    # of forward(): on a CPU that tensor costs more than the attention itself.
    def query_scores(self, q: torch.Tensor) -> torch.Tensor:
        """``q[..., i, :] . E[i, j]`` for queries ``(..., n, d)``: ``(..., n, n)``."""
        n = q.shape[-2]
        rows, cols = _relative_indices(n, n, self.length, q.device)
        by_row, by_col = q @ self.embeddings_table_v.T, q @ self.embeddings_table_h.T  # (..., n, 2L+2)
        return by_row.gather(-1, rows.expand(*q.shape[:-2], n, n)) + by_col.gather(-1, cols.expand(*q.shape[:-2], n, n))

    def weighted_sum(self, attn: torch.Tensor) -> torch.Tensor:
        """``sum_j attn[..., i, j] E[i, j]`` for weights ``(..., n, n)``: ``(..., n, d)``."""
        n = attn.shape[-1]
        rows, cols = _relative_indices(n, n, self.length, attn.device)
        bins = attn.new_zeros(*attn.shape[:-1], self.embeddings_table_v.shape[0])
        by_row = bins.scatter_add(-1, rows.expand_as(attn), attn)
        by_col = bins.scatter_add(-1, cols.expand_as(attn), attn)
        return by_row @ self.embeddings_table_v + by_col @ self.embeddings_table_h


@functools.lru_cache(maxsize=32)
def _relative_indices(length_q: int, length_k: int, length: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Row and column distance indices of every (query, key) pair, clipped to ``length``
    and shifted to start at 1; pairs with the class token get 0. Cached: they depend on
    the sizes only, and building them costs more than the lookup on a CPU."""
    # Patches only: the class token is the padded first row and column.
    side = int((length_q - 1) ** 0.5)
    q = torch.arange(length_q - 1, device=device)
    k = torch.arange(length_k - 1, device=device)
    rows = (k[None, :] // side - q[:, None] // side).clamp(-length, length) + length + 1
    cols = (k[None, :] % side - q[:, None] % side).clamp(-length, length) + length + 1
    return F.pad(rows, (1, 0, 1, 0), value=0), F.pad(cols, (1, 0, 1, 0), value=0)


class RelativePositionSelfAttention(torch.nn.Module):
    """Self-attention with heads of fixed width ``head_dim`` (their number may be a
    choice) and optional relative position encodings on keys and values."""

    def __init__(
        self,
        embed_dim: Any,
        num_heads: Any,
        head_dim: int = HEAD_DIM,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        qkv_bias: bool = False,
        qk_scale: float | None = None,
        rpe: bool = False,
        rpe_length: int = 14,
    ) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.scale = qk_scale or head_dim**-0.5
        inner = num_heads * head_dim
        self.q = nn.Linear(embed_dim, inner, bias=qkv_bias)
        self.k = nn.Linear(embed_dim, inner, bias=qkv_bias)
        self.v = nn.Linear(embed_dim, inner, bias=qkv_bias)
        self.attn_drop = torch.nn.Dropout(attn_drop)
        self.proj = nn.Linear(inner, embed_dim)
        self.proj_drop = torch.nn.Dropout(proj_drop)
        self.rpe = rpe
        if rpe:
            self.rel_pos_embed_k = RelativePosition2D(head_dim, rpe_length)
            self.rel_pos_embed_v = RelativePosition2D(head_dim, rpe_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        d = self.head_dim
        # The head count follows from the projection's width (it may be searched).
        q, k, v = (f(x).reshape(b, n, -1, d).transpose(1, 2) for f in (self.q, self.k, self.v))
        heads = q.shape[1]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if self.rpe:
            attn = attn + self.rel_pos_embed_k.query_scores(q) * self.scale
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = attn @ v
        if self.rpe:
            out = out + self.rel_pos_embed_v.weighted_sum(attn)
        out = out.transpose(1, 2).reshape(b, n, heads * d)
        return self.proj_drop(self.proj(out))


class TransformerEncoderLayer(torch.nn.Module):
    """Attention and MLP (``embed_dim * mlp_ratio`` hidden, GELU), each residual with
    layer norm before (``pre_norm``) or after, dropout and stochastic depth."""

    def __init__(
        self,
        embed_dim: Any,
        num_heads: Any,
        mlp_ratio: Any = 4.0,
        drop_path: float = 0.0,
        drop_rate: float = 0.0,
        pre_norm: bool = True,
        **attention: Any,
    ) -> None:
        super().__init__()
        self.normalize_before = pre_norm
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else torch.nn.Identity()
        self.attn = RelativePositionSelfAttention(embed_dim, num_heads, **attention)
        self.attn_layer_norm = nn.LayerNorm(embed_dim)
        self.ffn_layer_norm = nn.LayerNorm(embed_dim)
        self.activation_fn = torch.nn.GELU()
        self.dropout = torch.nn.Dropout(drop_rate)
        hidden = to_int(embed_dim * mlp_ratio)
        self.fc1 = nn.Linear(embed_dim, hidden)
        self.fc2 = nn.Linear(hidden, embed_dim)

    def _residual(self, x: torch.Tensor, norm: torch.nn.Module, branch: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.dropout(branch))
        return x if self.normalize_before else norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn_layer_norm(x) if self.normalize_before else x
        x = self._residual(x, self.attn_layer_norm, self.attn(h))
        h = self.ffn_layer_norm(x) if self.normalize_before else x
        h = self.fc2(self.dropout(self.activation_fn(self.fc1(h))))
        return self._residual(x, self.ffn_layer_norm, h)


class _WidthSliced(torch.nn.Module):
    """A module whose one parameter ``param_name`` has the embedding width last. In a
    space it is built at the largest width; a subnet loading a supernet's state takes
    the first entries of that width (the weight-sharing rule of the sliced layers)."""

    param_name: ClassVar[str]

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, local_metadata: Any, strict: bool, *args: Any
    ) -> None:
        key = prefix + self.param_name
        own = getattr(self, self.param_name)
        given = state_dict.get(key)
        if isinstance(given, torch.Tensor) and given.dim() == own.dim() and given.shape[-1] > own.shape[-1]:
            if given.shape[:-1] == own.shape[:-1]:
                state_dict[key] = given[..., : own.shape[-1]]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args)


class ClassToken(_WidthSliced):
    """Prepends a learned class token. Built at the largest width in a space, it uses
    the first ``x.shape[-1]`` entries, so a supernet with a sampled width still runs."""

    param_name = "cls_token"

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, embed_dim))
        torch.nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        token = self.cls_token[..., : x.shape[-1]].expand(x.shape[0], -1, -1)
        return torch.cat((token, x), dim=1)


class AbsolutePositionEmbedding(_WidthSliced):
    """Adds a learned position embedding (sliced to the input's width, as :class:`ClassToken`)."""

    param_name = "pos_embed"

    def __init__(self, length: int, embed_dim: int) -> None:
        super().__init__()
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, length, embed_dim))
        torch.nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embed[..., : x.shape[-1]]


@register_space("autoformer")
class AutoFormer(HubSpace):
    """The AutoFormer space, with NNI 3.0's arguments and labels.

    ``search_*``: the candidates of the embedding width, each layer's MLP ratio and
    head count (heads are 64 wide), and the depth. ``AutoFormer.preset(name)`` gives
    the paper's tiny/small/base spaces.

    >>> space = AutoFormer((32, 48), (2.0, 3.0), (1, 2), (1, 2), img_size=32, patch_size=8, num_labels=10)
    >>> sorted(space.search_space)
    ['depth', 'embed_dim', 'mlp_ratio_0', 'mlp_ratio_1', 'num_head_0', 'num_head_1']
    >>> space.freeze(space.random(seed=0))(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    # The samples are NNI 3.0's (the official AutoFormer-T/S/B subnet configurations of
    # microsoft/Cream); the counts are of the networks they build, 1000 classes.
    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "autoformer-tiny": SearchedModel(
            "autoformer-tiny",
            5_867_944,
            "NNI 3.0's autoformer-tiny sample; exact count of that network. The paper (Table 3) reports 5.7M, "
            "which this network does not round to (5,768,104 without its relative-position tables)",
            PRESETS["tiny"],
        ),
        "autoformer-small": SearchedModel(
            "autoformer-small",
            22_891_432,
            "NNI 3.0's autoformer-small sample; exact count of that network; paper Table 3: 22.9M",
            PRESETS["small"],
        ),
        "autoformer-base": SearchedModel(
            "autoformer-base",
            53_691_688,
            "NNI 3.0's autoformer-base sample; exact count of that network; paper Table 3: 54M",
            PRESETS["base"],
        ),
    }
    reduced_kwargs: ClassVar[dict[str, object]] = {
        "search_embed_dim": (16, 24),
        "search_mlp_ratio": (1.0, 2.0),
        "search_num_heads": (1, 2),
        "search_depth": (1, 2),
        "img_size": 32,
        "patch_size": 8,
        "num_labels": 10,
    }

    @classmethod
    def reduced_kwargs_for(cls, input_size: int) -> dict[str, Any]:
        """The reduced space for ``input_size`` images (the patch grid is fixed by it): 8-pixel patches
        up to 64 pixels, else 16-pixel ones (ImageNet's)."""
        return {**cls.reduced_kwargs, "img_size": input_size, "patch_size": 8 if input_size <= 64 else 16}

    def __init__(
        self,
        search_embed_dim: tuple[int, ...] = (192, 216, 240),
        search_mlp_ratio: tuple[float, ...] = (3.0, 3.5, 4.0),
        search_num_heads: tuple[int, ...] = (3, 4),
        search_depth: tuple[int, ...] = (12, 13, 14),
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        num_labels: int = 1000,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        pre_norm: bool = True,
        global_pooling: bool = True,
        absolute_position: bool = True,
        qk_scale: float | None = None,
        rpe: bool = True,
    ) -> None:
        super().__init__()
        for name, values in (
            ("search_embed_dim", search_embed_dim),
            ("search_mlp_ratio", search_mlp_ratio),
            ("search_num_heads", search_num_heads),
            ("search_depth", search_depth),
        ):
            if not values:
                raise HubError(f"AutoFormer: {name} needs at least one candidate")
        if min(search_depth) < 1:
            raise HubError(f"AutoFormer: search_depth must be positive, got {tuple(search_depth)}")
        if img_size % patch_size:
            raise HubError(f"AutoFormer: img_size ({img_size}) must be a multiple of patch_size ({patch_size})")
        max_depth = max(search_depth)
        embed_dim = nn.choice("embed_dim", list(search_embed_dim))
        depth = nn.choice("depth", list(search_depth))
        mlp_ratios = [nn.choice(f"mlp_ratio_{i}", list(search_mlp_ratio)) for i in range(max_depth)]
        num_heads = [nn.choice(f"num_head_{i}", list(search_num_heads)) for i in range(max_depth)]

        self.global_pooling = global_pooling
        self.patches_num = (img_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        widest = nn.largest(embed_dim)
        self.cls_token = ClassToken(widest)
        self.pos_embed: torch.nn.Module = (
            AbsolutePositionEmbedding(self.patches_num + 1, widest) if absolute_position else torch.nn.Identity()
        )
        # Stochastic depth grows linearly over the deepest candidate's layers (as NNI).
        rates = torch.linspace(0, drop_path_rate, max_depth).tolist()

        def layer(index: int) -> TransformerEncoderLayer:
            return TransformerEncoderLayer(
                embed_dim,
                num_heads[index],
                mlp_ratio=mlp_ratios[index],
                drop_path=rates[index],
                drop_rate=drop_rate,
                pre_norm=pre_norm,
                qkv_bias=qkv_bias,
                attn_drop=attn_drop_rate,
                qk_scale=qk_scale,
                rpe=rpe,
                rpe_length=img_size // patch_size,
            )

        self.blocks = nn.Repeat(layer, depth)
        self.norm: torch.nn.Module = nn.LayerNorm(embed_dim) if pre_norm else torch.nn.Identity()
        self.head: torch.nn.Module = nn.Linear(embed_dim, num_labels) if num_labels > 0 else torch.nn.Identity()

    @classmethod
    def preset(cls, name: str) -> dict[str, tuple[Any, ...]]:
        """The paper's search space ``'tiny'``, ``'small'`` or ``'base'`` as arguments."""
        key = name.lower()
        if key not in PRESETS:
            raise HubError(f"AutoFormer.preset: unknown size {name!r}; use one of {sorted(PRESETS)}")
        return dict(PRESETS[key])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, patches, width)
        x = self.norm(self.blocks(self.pos_embed(self.cls_token(x))))
        x = x[:, 1:].mean(dim=1) if self.global_pooling else x[:, 0]
        return self.head(x)
