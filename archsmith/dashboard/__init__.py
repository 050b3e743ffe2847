"""The web dashboard: ``archsmith dashboard [DIR]`` serves a read-only, live view of the
experiments under DIR (list, trials, figures, per-trial details, top-k download).

>>> from archsmith.dashboard import create_app  # doctest: +SKIP
>>> app = create_app("archsmith-experiments")  # a FastAPI app; serve it with uvicorn  # doctest: +SKIP

It needs the ``dashboard`` extra (``pip install 'archsmith[dashboard]'``: FastAPI,
uvicorn, plotly); importing this package does not, so the command line can name the
missing part instead of failing on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from ._app import create_app

        return create_app
    raise AttributeError(f"module 'archsmith.dashboard' has no attribute {name!r}")


__all__ = ["create_app"]
