"""Property tests over random chains of mutators: every sample freezes to a valid
model, labels are the same in every build, and the space counts what it lists."""

from __future__ import annotations

import torch
import torch.fx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archsmith.nn as nn

WIDTH = 6


class SwapActivations(nn.Mutator):
    """Every activation becomes one of three (auto labels, one per activation met)."""

    def mutate(self, graph: nn.MutableGraph) -> None:
        for node in graph.get_nodes_by_type(torch.nn.ReLU):
            node.replace(self.choice([torch.nn.ReLU, torch.nn.Tanh, torch.nn.GELU]))


class Deepen(nn.Mutator):
    """Linear ``index`` may become a stack of 1 or 2 (a decision asked only if deepened)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def mutate(self, graph: nn.MutableGraph) -> None:
        linears = graph.get_nodes_by_type(torch.nn.Linear)[:-1]  # the head keeps its shape
        if not linears:
            return
        node = linears[self.index % len(linears)]
        if self.choice([False, True], label=f"deepen_{self.index}"):
            depth = self.choice([1, 2], label=f"depth_{self.index}")
            node.replace(lambda: torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(depth + 1)]))


class Skip(nn.Mutator):
    """A skip from the input of node ``index`` around it, or not."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def mutate(self, graph: nn.MutableGraph) -> None:
        inner = graph.nodes[:-1]  # not around the head: its width differs
        node = inner[self.index % len(inner)]
        if node.inputs and self.choice([False, True]):
            node.add_skip(node.inputs[0])


class DropOrNorm(nn.Mutator):
    """The first activation is kept, removed, or gets a LayerNorm before it."""

    def mutate(self, graph: nn.MutableGraph) -> None:
        acts = [n for n in graph.nodes if isinstance(n.module, (torch.nn.ReLU, torch.nn.Tanh, torch.nn.GELU))]
        if not acts:
            return
        what = self.choice(["keep", "remove", "norm"])
        if what == "remove":
            acts[0].remove()
        elif what == "norm":
            acts[0].insert_before(lambda: torch.nn.LayerNorm(WIDTH))


MUTATORS = st.one_of(
    st.just(SwapActivations()),
    st.integers(0, 3).map(Deepen),
    st.integers(0, 6).map(Skip),
    st.just(DropOrNorm()),
)


def base(blocks: int) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for _ in range(blocks):
        layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(WIDTH, 2))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=st.integers(1, 3), chain=st.lists(MUTATORS, min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_every_sample_of_a_random_chain_freezes_to_a_valid_model(
    blocks: int, chain: list[nn.Mutator], seed: int
) -> None:
    torch.set_num_threads(1)
    x = torch.randn(3, WIDTH)
    space = nn.mutate(base(blocks), chain, example_input=x)
    again = nn.mutate(base(blocks), chain)
    assert repr(again.search_space) == repr(space.search_space)  # the same labels, candidates, conditions
    samples = [space.random(seed=seed + i) for i in range(4)]
    if space.size() <= 64:
        listed = list(space.grid())
        assert len(listed) == space.size()
        keys = {space.search_space.architecture_key(s) for s in listed}
        assert len(keys) == len(listed)  # each architecture once
        samples += listed[:: max(1, len(listed) // 8)]
    for sample in samples:
        model = space.freeze(sample)
        assert isinstance(model, torch.fx.GraphModule)
        model.graph.lint()
        assert not [m for m in model.modules() if isinstance(m, nn.Placeholder)]
        out = model(x)
        assert out.shape == (3, 2) and torch.isfinite(out).all()
        assert again.freeze(sample).code == model.code
