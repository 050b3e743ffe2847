"""AutoFormer beyond the registry-driven tests: NNI's labels and presets, the
relative-position attention against the reference formulation, the variants' switches."""

from __future__ import annotations

import pytest
import torch

from archsmith.hub import AutoFormer, HubError
from archsmith.hub._autoformer import RelativePositionSelfAttention

SMALL = {
    "search_embed_dim": (16, 24),
    "search_mlp_ratio": (1.0, 2.0),
    "search_num_heads": (1, 2),
    "search_depth": (1, 2),
    "img_size": 16,
    "patch_size": 4,
    "num_labels": 5,
}


def test_nni_labels_and_presets() -> None:
    space = AutoFormer(**SMALL).search_space
    assert sorted(space) == ["depth", "embed_dim", "mlp_ratio_0", "mlp_ratio_1", "num_head_0", "num_head_1"]
    assert space["embed_dim"].values == [16, 24]
    assert AutoFormer.preset("Base")["search_depth"] == (14, 15, 16)
    with pytest.raises(HubError, match="unknown size 'huge'"):
        AutoFormer.preset("huge")


@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"pre_norm": False, "global_pooling": False},
        {"rpe": False, "absolute_position": False, "qkv_bias": False},
        {"drop_rate": 0.1, "attn_drop_rate": 0.1, "drop_path_rate": 0.2},
    ],
)
def test_variants_freeze_and_run(switches: dict[str, object]) -> None:
    space = AutoFormer(**SMALL, **switches)  # type: ignore[arg-type]
    for seed in range(2):
        sample = space.random(seed=seed)
        model = space.freeze(sample)
        assert model.cls_token.cls_token.shape[-1] == sample["embed_dim"]
        assert len(model.blocks) == sample["depth"]
        model.train()
        out = model(torch.randn(3, 3, 16, 16))
        assert out.shape == (3, 5) and torch.isfinite(out).all()
        out.sum().backward()


def test_relative_position_attention_matches_the_reference() -> None:
    torch.manual_seed(0)
    attn = RelativePositionSelfAttention(32, 2, head_dim=8, rpe=True, rpe_length=3).eval()
    b, n, h, d = 2, 10, 2, 8  # 9 patches (3x3) and the class token
    x = torch.randn(b, n, 32)
    with torch.no_grad():
        q, k, v = (f(x).reshape(b, n, h, d).permute(0, 2, 1, 3) for f in (attn.q, attn.k, attn.v))
        # The reference code's batched-matmul form (NNI's and the official AutoFormer's).
        scores = (q @ k.transpose(-2, -1)) * attn.scale
        r_k = attn.rel_pos_embed_k(n, n)
        scores = (
            scores
            + (q.permute(2, 0, 1, 3).reshape(n, h * b, d) @ r_k.transpose(2, 1)).transpose(1, 0).reshape(b, h, n, n)
            * attn.scale
        )
        weights = scores.softmax(-1)
        out = (weights @ v).transpose(1, 2).reshape(b, n, h * d)
        r_v = attn.rel_pos_embed_v(n, n)
        out = out + (weights.permute(2, 0, 1, 3).reshape(n, b * h, n) @ r_v).transpose(1, 0).reshape(
            b, h, n, d
        ).transpose(2, 1).reshape(b, n, h * d)
        assert torch.allclose(attn(x), attn.proj(out), atol=1e-5)


def test_arguments_are_checked() -> None:
    with pytest.raises(HubError, match="search_num_heads needs at least one candidate"):
        AutoFormer(**{**SMALL, "search_num_heads": ()})  # type: ignore[arg-type]
    with pytest.raises(HubError, match="search_depth must be positive"):
        AutoFormer(**{**SMALL, "search_depth": (0, 1)})  # type: ignore[arg-type]
    with pytest.raises(HubError, match="multiple of patch_size"):
        AutoFormer(**{**SMALL, "img_size": 18})  # type: ignore[arg-type]


def test_weight_sharing_supernet_runs_a_sample_and_gives_its_weights() -> None:
    # The class token and position embeddings are built at the largest width and sliced:
    # the sampled subnet inside the supernet and the frozen subnet with its weights agree.
    from archsmith.strategy.oneshot import Supernet

    space = AutoFormer(**SMALL)
    supernet = Supernet(space, "sampling", "RandomOneShot")
    supernet.eval()
    x = torch.randn(2, 3, 16, 16)
    for seed in range(3):
        sample = space.random(seed=seed)
        supernet.set_sample(sample)
        model = space.freeze(sample, weights_from=supernet).eval()
        with torch.no_grad():
            assert torch.allclose(supernet.model(x), model(x), atol=1e-5)
