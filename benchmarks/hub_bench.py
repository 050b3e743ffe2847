"""The hub's spaces, measured: freezing a sample against building the same network
directly, and DARTS' one-shot step on the DARTS cell space.

Prints:
1. per hub space, the construction time of a frozen sample against the same plain
   network built directly (target <= 1.3x), twice: a random sample of the reduced
   space (``space.freeze(sample)``, validation included), and the space's first
   published architecture (``fixed_arch(sample)`` + the class, which is what freeze
   runs after validating; the full space, slow to build, is never built). "Directly"
   is a replay: the constructor calls of the frozen model's ``torch.nn`` layers are
   recorded during one freeze and called again with the same concrete arguments (the
   hub's own blocks too, where their arguments are plain values),
   ``Sequential``/``ModuleList``/``ModuleDict`` containers built as such, the hub's own
   modules assembled as plain ``torch.nn.Module`` trees with the same parameters, then the space's own ``torch.nn.init`` calls (its weight
   initialisation) repeated on the same parameters. That is a lower bound for any hand-written builder (which runs
   its own Python too), so the ratio is an upper bound;
2. DARTS on the DARTS space (reduced): the supernet's weight step against the step
   of the plain network that runs every candidate path (every op on every input of
   every node, summed), built from frozen paths of the same space (target <= 1.2x).

Timings are interleaved (the order rotated every round), repeated, and the medians
and the median of per-round ratios shown. Torch runs on one thread.
Run: ``.venv/bin/python benchmarks/hub_bench.py`` (about 3-5 minutes on 2 loaded cores).
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

import archsmith.nn as nn
from archsmith.hub import get_space, list_spaces
from archsmith.hub._base import load_arch_file

# Replay: record the torch.nn constructor calls of one freeze --------------------------------
Plan = tuple[Any, ...]
CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


def _module_classes(prefix: str) -> list[type]:
    """The module classes defined in modules under ``prefix`` with an ``__init__`` of
    their own (model spaces excluded: they are what is being compared)."""
    found, stack = [], [torch.nn.Module]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if (
                sub.__module__.startswith(prefix)
                and "__init__" in sub.__dict__
                and not issubclass(sub, nn.ModelSpace)
                and sub not in found
            ):
                found.append(sub)
    return found


def _plain(value: Any) -> bool:
    """Whether a recorded argument can be passed again as it is (a module instance
    would be reused rather than built)."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return not isinstance(value, torch.nn.Module)


class Recording:
    """What one build did: ``calls`` maps ``id(module)`` to ``(weakref, class, args,
    kwargs)`` of its outermost ``torch.nn`` constructor call; ``inits`` holds the
    ``torch.nn.init`` calls made outside any torch layer's constructor (a hub
    space's own weight initialisation) as ``(function, id(tensor), args, kwargs)``."""

    def __init__(self) -> None:
        self.calls: dict[int, tuple[Any, ...]] = {}
        self.inits: list[tuple[Any, ...]] = []


@contextmanager
def recording() -> Iterator[Recording]:
    """Record the constructor and initialisation calls of everything built inside the block."""
    record = Recording()
    building: set[int] = set()
    # torch layers, and the hub's own blocks: a hand-written network calls those too.
    classes = _module_classes("torch.nn.") + _module_classes("archsmith.hub.")
    originals = {cls: cls.__dict__["__init__"] for cls in classes}
    init_functions = {
        name: getattr(torch.nn.init, name)
        for name in dir(torch.nn.init)
        if name.endswith("_") and not name.startswith("_") and callable(getattr(torch.nn.init, name))
    }

    def wrap(cls: type, init: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(init)
        def __init__(self: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
            key = id(self)
            outer = key not in building
            if outer:
                building.add(key)
                record.calls[key] = (weakref.ref(self), cls, args, kwargs)
            try:
                init(self, *args, **kwargs)
            finally:
                if outer:
                    building.discard(key)

        return __init__

    def wrap_init(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def initialise(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if not building:  # a layer's own reset_parameters is part of its constructor call
                record.inits.append((function, id(tensor), args, kwargs))
            return function(tensor, *args, **kwargs)

        return initialise

    for cls, init in originals.items():
        cls.__init__ = wrap(cls, init)  # type: ignore[misc]
    for name, function in init_functions.items():
        setattr(torch.nn.init, name, wrap_init(function))
    try:
        yield record
    finally:
        for cls, init in originals.items():
            cls.__init__ = init  # type: ignore[misc]
        for name, function in init_functions.items():
            setattr(torch.nn.init, name, function)


def replay_plan(model: torch.nn.Module, record: Recording) -> tuple[Plan, list[tuple[Any, ...]]]:
    """How to build ``model`` again without archsmith: torch layers from their recorded
    calls, every other module as a plain tree holding the same parameters; then the
    space's own initialisation calls, by parameter name."""
    names = {id(t): name for name, t in [*model.named_parameters(), *model.named_buffers()]}
    inits = [(fn, names[key], args, kwargs) for fn, key, args, kwargs in record.inits if key in names]
    return _module_plan(model, record.calls), inits


def _module_plan(model: torch.nn.Module, records: dict[int, tuple[Any, ...]]) -> Plan:
    record = records.get(id(model))
    if (
        record is not None
        and record[0]() is model
        and record[1] is type(model)
        and not isinstance(model, CONTAINERS)
        and _plain(record[2])
        and _plain(record[3])
    ):
        return ("call", record[1], record[2], record[3])
    if type(model) in CONTAINERS:  # a hand-written network builds these too
        return (
            "container",
            type(model),
            [(name, _module_plan(child, records)) for name, child in model.named_children()],
        )
    tensors = [(name, tuple(t.shape), t.dtype, True) for name, t in model.named_parameters(recurse=False)] + [
        (name, tuple(t.shape), t.dtype, False) for name, t in model.named_buffers(recurse=False) if t is not None
    ]
    children = [(name, _module_plan(child, records)) for name, child in model.named_children()]
    return ("tree", tensors, children)


def replay(plan: Plan, inits: list[tuple[Any, ...]]) -> torch.nn.Module:
    """Build the plan, then initialise its weights as the space does."""
    module = _build(plan)
    if inits:
        tensors = dict([*module.named_parameters(), *module.named_buffers()])
        for function, name, args, kwargs in inits:
            function(tensors[name], *args, **kwargs)
    return module


def _build(plan: Plan) -> torch.nn.Module:
    if plan[0] == "call":
        return plan[1](*plan[2], **plan[3])  # type: ignore[no-any-return]
    if plan[0] == "container":
        built = [(name, _build(child)) for name, child in plan[2]]
        if plan[1] is torch.nn.ModuleDict:
            return torch.nn.ModuleDict(built)
        container = plan[1]()
        for name, module in built:
            container.add_module(name, module)
        return container  # type: ignore[no-any-return]
    module = torch.nn.Module()
    for name, shape, dtype, is_parameter in plan[1]:
        tensor = torch.empty(shape, dtype=dtype)
        if is_parameter:
            module.register_parameter(name, torch.nn.Parameter(tensor))
        else:
            module.register_buffer(name, tensor)
    for name, child in plan[2]:
        module.add_module(name, _build(child))
    return module


def count_calls(plan: Plan) -> int:
    return 1 if plan[0] == "call" else sum(count_calls(child) for _, child in plan[2])


# Timing ----------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(runs: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each run per round, the order rotated every round; warm-up rounds dropped."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = timed(runs[name])
            if i >= warmup:
                times[name].append(seconds)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


# 1. Freeze vs direct ---------------------------------------------------------------------------
def freeze_rows(rounds: int) -> list[tuple[str, str, float, float, float, int]]:
    rows = []
    for name in list_spaces():
        cls = get_space(name)
        space = cls(**cls.reduced_kwargs)
        sample = space.random(seed=0)
        rows.append(_compare(name, "reduced, random sample", lambda s=space, x=sample: s.freeze(x), rounds))
        if cls.searched_models:
            variant = sorted(cls.searched_models)[0]
            arch, kwargs = load_arch_file(variant), dict(cls.searched_models[variant].kwargs)

            def published(c: type = cls, a: dict[str, Any] = arch, k: dict[str, Any] = kwargs) -> torch.nn.Module:
                with nn.fixed_arch(a):
                    return c(**k)  # type: ignore[no-any-return]

            rows.append(_compare(name, variant, published, max(3, rounds // 2)))
    return rows


def _compare(
    name: str, what: str, freeze: Callable[[], torch.nn.Module], rounds: int
) -> tuple[str, str, float, float, float, int]:
    with recording() as records:
        model = freeze()
    plan, inits = replay_plan(model, records)
    ours = sum(p.numel() for p in model.parameters())
    theirs = sum(p.numel() for p in replay(plan, inits).parameters())
    if ours != theirs:
        raise RuntimeError(f"{name} ({what}): the replay has {theirs} parameters, the frozen model {ours}")
    times = interleaved({"freeze": freeze, "direct": lambda: replay(plan, inits)}, rounds)
    freeze_s, direct_s = statistics.median(times["freeze"]), statistics.median(times["direct"])
    ratio = paired_ratio(times["freeze"], times["direct"])
    print(f"  {name:13s} {what:24s} {freeze_s * 1e3:9.1f} ms {direct_s * 1e3:9.1f} ms {ratio:6.2f}x", flush=True)
    return name, what, freeze_s, direct_s, ratio, count_calls(plan)


# 2. DARTS on the DARTS space -------------------------------------------------------------------
class AllPathsCell(torch.nn.Module):
    """A cell running every op on every input of every node, summed (no weights):
    the plain network a DARTS supernet of the cell stands for."""

    def __init__(self, frozen: torch.nn.Module, slots: list[list[dict[str, torch.nn.Module]]]) -> None:
        super().__init__()
        self.preprocessor, self.postprocessor = frozen.preprocessor, frozen.postprocessor
        self.output_node_indices = list(frozen.output_node_indices)
        self.slots = torch.nn.ModuleList(
            torch.nn.ModuleList(torch.nn.ModuleDict(paths) for paths in node) for node in slots
        )

    def forward(self, inputs: list[torch.Tensor]) -> Any:
        states = list(self.preprocessor(list(inputs)))
        for node in self.slots:
            total = None
            for paths in node:
                for key, op in paths.items():
                    out = op(states[int(key.split("_", 1)[0])])
                    total = out if total is None else total + out
            states.append(total)
        return self.postprocessor(torch.cat([states[k] for k in self.output_node_indices], 1), list(inputs))


def _cells(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if type(m).__name__ == "NDSCell"]


def all_paths_model(space: Any) -> torch.nn.Module:
    """The DARTS space's every candidate path in one plain network, from frozen
    paths: path (k, r) puts op ``k`` on every node input, reading input ``r`` (mod
    the node's inputs); together they hold every (input, op) of every node."""
    ops = next(leaf.values for label, leaf in space.search_space.items() if "/op_" in label)
    inputs = max(len(leaf.values) for label, leaf in space.search_space.items() if "/input_" in label)
    found: dict[tuple[int, int, int], dict[str, torch.nn.Module]] = {}
    base = None
    for k, op in enumerate(ops):
        for r in range(inputs):
            sample = {
                label: op if "/op_" in label else leaf.values[r % len(leaf.values)]
                for label, leaf in space.search_space.items()
            }
            frozen = space.freeze(sample)
            if base is None:
                base = frozen
            for c, cell in enumerate(_cells(frozen)):
                for n, (node_ops, indices) in enumerate(zip(cell.ops, cell.input_indices)):
                    for j, (module, i) in enumerate(zip(node_ops.children(), indices)):
                        found.setdefault((c, n, j), {})[f"{i}_{k}"] = module
    assert base is not None
    for c, cell in enumerate(_cells(base)):
        slots = [[found[(c, n, j)] for j in range(len(node_ops))] for n, node_ops in enumerate(cell.ops)]
        for n, node in enumerate(slots):
            for paths in node:
                assert len(paths) == (n + 2) * len(ops), "a path of the cell is missing"
        parent_name, _, child_name = next(name for name, m in base.named_modules() if m is cell).rpartition(".")
        base.get_submodule(parent_name)._modules[child_name] = AllPathsCell(cell, slots)
    return base


def darts_step_ratio(rounds: int, batch_size: int, size: int) -> tuple[float, float, float]:
    from archsmith.evaluator import Classification
    from archsmith.hub import DARTS as DartsSpace
    from archsmith.strategy.oneshot import DARTS, Supernet

    torch.manual_seed(0)
    space = DartsSpace(**DartsSpace.reduced_kwargs)
    classes = DartsSpace.reduced_kwargs["num_labels"]
    x = torch.randn(batch_size * 4, 3, size, size, generator=torch.Generator().manual_seed(0))
    y = torch.arange(batch_size * 4) % classes
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)
    evaluator = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)
    algorithm = DARTS()
    algorithm.recipe = evaluator.training_recipe()
    algorithm.supernet = Supernet(space, algorithm.family, algorithm.name)
    algorithm.rng = random.Random(0)
    algorithm.configure()
    algorithm.supernet.train()
    plain = all_paths_model(space).train()
    ours = sum(p.numel() for p in algorithm.supernet.weight_parameters())
    theirs = sum(p.numel() for p in plain.parameters())
    if ours != theirs:  # the same weights, or the two do not compute the same network
        raise RuntimeError(f"the all-paths network has {theirs} parameters, the supernet's weights {ours}")
    optimizer = algorithm.recipe.make_optimizer(plain.parameters())
    batches = list(loader)

    def plain_step(batch: Any) -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(plain(batch[0]), batch[1]).backward()
        optimizer.step()

    step = [0]

    def supernet() -> None:
        algorithm.weight_step(batches[step[0] % len(batches)])

    def all_paths() -> None:
        plain_step(batches[step[0] % len(batches)])
        step[0] += 1

    times = interleaved({"supernet": supernet, "all_paths": all_paths}, rounds, warmup=3)
    return statistics.median(times["supernet"]), statistics.median(times["all_paths"]), paired_ratio(*times.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per reduced-space freeze comparison")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds of the DARTS step comparison")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=16, help="input size of the DARTS step comparison")
    parser.add_argument("--batch", type=int, default=16, help="batch size of the DARTS step comparison")
    parser.add_argument("--only", choices=("freeze", "darts"), help="run one part only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.only in (None, "freeze"):
        print("1. construction: freeze vs the same network built directly (target <= 1.3x)")
        print(f"  {'space':13s} {'sample':24s} {'freeze':>12s} {'direct':>12s} {'ratio':>7s}")
        rows = freeze_rows(args.rounds)
        missed = [f"{name} ({what}) {ratio:.2f}x" for name, what, _, _, ratio, _ in rows if ratio > 1.3]
        print(f"  over target: {', '.join(missed) if missed else 'none'}")
    if args.only in (None, "darts"):
        print(
            f"\n2. DARTS on the DARTS space (reduced, {args.size}x{args.size}, batch {args.batch}): "
            "weight step vs every candidate path in one plain network"
        )
        ours, theirs, ratio = darts_step_ratio(args.steps, args.batch, args.size)
        verdict = "meets" if ratio <= 1.2 else "MISSES"
        print(f"  supernet {ours * 1e3:.1f} ms, all paths {theirs * 1e3:.1f} ms: {ratio:.2f}x ({verdict} <= 1.2x)")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
