"""Every registered hub space, tested through the registry (a new space is picked up
without touching this file): construction, seeded samples that freeze and run,
stable labels, published parameter counts, and the weight-loading paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsmith.hub import SPACES, HubError, get_space, list_spaces
from archsmith.nn._mutable_module import MutableModule
from archsmith.space import Mutable

#: Modules of these packages are plain torch modules (hub blocks, frozen primitives' bodies).
_PLAIN = ("archsmith.hub.", "archsmith.nn._nasbench101", "archsmith.nn._frozen", "archsmith.nn._cell")

# Small models on a shared machine: extra torch threads only contend (20x slower here).
pytestmark = pytest.mark.usefixtures("one_thread")

SPACE_NAMES = list_spaces()
#: Spaces with at least one published architecture (NAS-Bench-101 has none).
PUBLISHED = [name for name in SPACE_NAMES if get_space(name).searched_models]
VARIANTS = [(name, variant) for name in SPACE_NAMES for variant in sorted(get_space(name).searched_models)]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _no_archsmith_modules(model: torch.nn.Module) -> list[str]:
    # A frozen model must be plain PyTorch: no searching module left (hub blocks, and the
    # plain modules frozen primitives become, such as NasBench101Body, are plain torch).
    return [
        f"{name}: {type(m).__module__}.{type(m).__name__}"
        for name, m in model.named_modules()
        if isinstance(m, MutableModule)
        or (type(m).__module__.startswith("archsmith.") and not type(m).__module__.startswith(_PLAIN))
    ]


def test_registry_lists_the_spaces() -> None:
    assert {"proxylessnas", "mobilenetv3", "darts", "nasnet", "enas", "amoebanet", "pnas"} <= set(SPACE_NAMES)
    assert SPACE_NAMES == sorted(SPACES)
    with pytest.raises(HubError, match=r"no hub space 'nope'.*proxylessnas"):
        get_space("nope")


SIZED = [(name, size) for name in SPACE_NAMES for size in get_space(name).reduced_input_sizes]


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_reduced_kwargs_declare_their_labels(name: str) -> None:
    cls = get_space(name)
    assert isinstance(cls.reduced_kwargs.get("num_labels"), int), "reduced_kwargs must name num_labels"
    assert cls.reduced_input_sizes, "a space is checked on at least one input size"


@pytest.mark.parametrize(("name", "size"), SIZED)
def test_reduced_space_samples_freeze_and_run(name: str, size: int) -> None:
    cls = get_space(name)
    kwargs = cls.reduced_kwargs_for(size)
    space = cls(**kwargs)
    assert len(space.search_space) > 0
    for seed in range(2):
        model = space.freeze(space.random(seed=seed))
        assert not _no_archsmith_modules(model)
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(2, 3, size, size))
        assert out.shape == (2, kwargs["num_labels"])
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_labels_are_stable_across_constructions(name: str) -> None:
    cls = get_space(name)
    first, second = cls(**cls.reduced_kwargs), cls(**cls.reduced_kwargs)
    assert list(first.search_space) == list(second.search_space)
    assert [repr(v) for v in first.search_space.values()] == [repr(v) for v in second.search_space.values()]
    assert first.random(seed=7) == second.random(seed=7)


@pytest.mark.parametrize(("name", "variant"), VARIANTS)
def test_searched_model_has_the_published_parameter_count(name: str, variant: str) -> None:
    cls = get_space(name)
    model = cls.load_searched_model(variant)
    assert not _no_archsmith_modules(model)
    assert _params(model) == cls.searched_models[variant].params
    # The shipped sample is a complete, valid sample of the space it belongs to.
    from archsmith.hub._base import load_arch_file

    space = cls(**cls.labels_kwargs(variant))
    space.validate(load_arch_file(variant))
    assert not any(isinstance(v, Mutable) for v in load_arch_file(variant).values())


@pytest.mark.parametrize("name", PUBLISHED)
def test_one_searched_model_runs_on_its_data_sets_inputs(name: str) -> None:
    cls = get_space(name)
    variant = cls.searched_models[sorted(cls.searched_models)[0]]
    model = cls.load_searched_model(variant.name).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, variant.input_size, variant.input_size))
    assert out.shape == (1, variant.num_labels)


@pytest.mark.parametrize("name", PUBLISHED)
def test_pretrained_without_a_file_says_nothing_is_downloaded(name: str) -> None:
    cls = get_space(name)
    variant = sorted(cls.searched_models)[0]
    with pytest.raises(HubError, match=rf"{variant}.*downloads nothing.*weights=PATH"):
        cls.load_searched_model(variant, pretrained=True)
    with pytest.raises(HubError, match="no searched model 'no-such-model'"):
        cls.load_searched_model("no-such-model")


@pytest.mark.parametrize("name", PUBLISHED)
def test_weights_round_trip(name: str, tmp_path: Path) -> None:
    cls = get_space(name)
    variant = sorted(cls.searched_models)[0]
    source = cls.load_searched_model(variant)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    for pretrained in (False, True):
        loaded = cls.load_searched_model(variant, pretrained=pretrained, weights=path)
        for (key, a), b in zip(source.state_dict().items(), loaded.state_dict().values()):
            assert torch.equal(a, b), key
    with pytest.raises(HubError, match="does not exist"):
        cls.load_searched_model(variant, weights=tmp_path / "missing.pt")


def test_bad_arguments_are_named() -> None:
    from archsmith.hub import MobileNetV3Space, ProxylessNAS

    with pytest.raises(HubError, match="base_widths needs 9 widths"):
        ProxylessNAS(base_widths=(8, 8))
    with pytest.raises(HubError, match="squeeze_excite needs 6 entries"):
        MobileNetV3Space(squeeze_excite=("none",))
    with pytest.raises(HubError, match="depth_range"):
        MobileNetV3Space(depth_range=(0, 2))
    with pytest.raises(HubError, match="unknown activation 'gelu'"):
        MobileNetV3Space(activation=("gelu",) * 9)


def test_nni_labels() -> None:
    # The labels an NNI 3.0 sample uses, so it loads unchanged.
    from archsmith.hub import MobileNetV3Space, ProxylessNAS

    proxyless = ProxylessNAS(**ProxylessNAS.reduced_kwargs).search_space
    assert proxyless["s2_depth"].values == [1, 2, 3, 4]
    assert proxyless["s7_i0"].values == ["k3e3", "k5e3", "k7e3", "k3e6", "k5e6", "k7e6"]
    mobilenet = MobileNetV3Space().search_space
    assert {"stem_ks", "s0_i0_ks", "s0_width_mult", "s7_width_mult", "s1_depth", "s1_i0_exp", "s5_i3_ks"} <= set(
        mobilenet
    )
    assert mobilenet["s2_i0_se"].values == ["identity", "se"]
    assert "s1_i0_se" not in mobilenet  # stage 1 has no SE by default
