from __future__ import annotations

import pytest

from ._netns import inside

# The scripts are run as subprocesses by the tests; importing them (doctest collection) would run them.
collect_ignore_glob = ["scripts/*"]

#: Tests that start a Ray of their own: the engine-contract tests' ``ray`` cases and test_ray_local.
RAY_MODULES = {"test_ray_local.py"}


def starts_ray(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return item.path.name in RAY_MODULES or "ray" in [p for p in params if isinstance(p, str)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if inside():
        return
    skip = pytest.mark.skip(reason="starts Ray: run inside a private network namespace by test_ray_in_namespace.py")
    for item in items:
        if starts_ray(item):
            item.add_marker(skip)
