"""ShuffleNetSpace beyond the registry-driven tests: NNI's labels, channel search,
the reference channel shuffle and the block's argument errors."""

from __future__ import annotations

import pytest
import torch

from archsmith.hub import HubError, ShuffleNetSpace
from archsmith.hub._base import load_arch_file
from archsmith.hub._shufflenet import ShuffleNetBlock, ShuffleXceptionBlock


@pytest.fixture(scope="module")
def channel_space() -> ShuffleNetSpace:
    # Built once: the widest space of the family.
    return ShuffleNetSpace(num_labels=10, channel_search=True)


def test_nni_labels_and_values(channel_space: ShuffleNetSpace) -> None:
    space = ShuffleNetSpace(num_labels=10).search_space
    assert list(space) == [f"layer_{i}" for i in range(1, 21)]
    assert space["layer_20"].values == ["k3", "k5", "k7", "xcep"]

    searched = channel_space.search_space
    assert {f"channel_{i}" for i in range(1, 21)} <= set(searched) and len(searched) == 40
    # 0.2x ... 1.6x of half the block's output width (32, 80, 160, 320 per stage).
    assert searched["channel_1"].values == [6, 12, 19, 25, 32, 38, 44, 51]
    assert searched["channel_20"].values == [64, 128, 192, 256, 320, 384, 448, 512]


def test_channel_search_samples_run_and_share_the_width_across_candidates(channel_space: ShuffleNetSpace) -> None:
    space = channel_space
    sample = space.random(seed=3)
    model = space.freeze(sample).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # The first pointwise conv of every block has the chosen middle width, whichever block it is.
    for i, block in enumerate(model.features, start=1):
        convs = [m for m in block.branch_main if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
        assert convs[0].out_channels == sample[f"channel_{i}"]


def test_channel_shuffle_matches_the_reference() -> None:
    block = ShuffleNetBlock(8, 8, 4, kernel_size=3, stride=1).eval()
    x = torch.randn(2, 8, 5, 5)
    # The reference code's shuffle (NNI's and the SPOS release's): reshape, permute, split.
    ref = x.reshape(2 * 8 // 2, 2, 25).permute(1, 0, 2).reshape(2, -1, 4, 5, 5)
    with torch.no_grad():
        out = block(x)
        assert torch.equal(out[:, :4], ref[0])
        assert torch.equal(out[:, 4:], block.branch_main(ref[1]))


def test_xception_block_has_three_depthwise_convs() -> None:
    block = ShuffleXceptionBlock(16, 64, 32, stride=2)
    depthwise = [m for m in block.branch_main if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert [m.stride for m in depthwise] == [(2, 2), (1, 1), (1, 1)]
    assert block(torch.zeros(1, 16, 8, 8)).shape == (1, 64, 4, 4)


def test_searched_models_differ_as_documented() -> None:
    # The paper's network searches channels; NNI's "spos" sample does not.
    assert any(k.startswith("channel_") for k in load_arch_file("spos"))
    assert not any(k.startswith("channel_") for k in load_arch_file("spos-nni"))
    model = ShuffleNetSpace.load_searched_model("spos")
    assert [type(b).__name__ for b in model.features][2] == "ShuffleXceptionBlock"


def test_block_arguments_are_checked() -> None:
    with pytest.raises(HubError, match="stride must be 1 or 2"):
        ShuffleNetBlock(8, 8, 4, kernel_size=3, stride=3)
    with pytest.raises(HubError, match="kernel_size must be 3, 5 or 7"):
        ShuffleNetBlock(8, 8, 4, kernel_size=4, stride=1)
    with pytest.raises(HubError, match="end with 'p'"):
        ShuffleNetBlock(8, 8, 4, kernel_size=3, stride=1, sequence="pd")
    with pytest.raises(HubError, match="must exceed"):
        ShuffleNetBlock(16, 8, 4, kernel_size=3, stride=1)


def test_weight_sharing_supernet_gives_a_sample_its_weights(channel_space: ShuffleNetSpace) -> None:
    # Middle widths are sliced from the widest candidate: the subnet inside the supernet
    # and the frozen subnet with the supernet's weights compute the same.
    from archsmith.strategy.oneshot import Supernet

    supernet = Supernet(channel_space, "sampling", "RandomOneShot")
    supernet.eval()
    sample = channel_space.random(seed=1)
    supernet.set_sample(sample)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = supernet.model(x)
        assert torch.allclose(channel_space.freeze(sample, weights_from=supernet).eval()(x), expected, atol=1e-4)
