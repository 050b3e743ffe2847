"""Test-wide settings and fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

# Scripts that tests run as subprocesses are not test modules (nor doctests).
collect_ignore_glob = ["*/scripts/*"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test: tiny models only pay for extra threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
