"""The web app: the backend's JSON API under ``/api``, three pages and their static
files. Routes only: what the pages show comes from the API (``_api.py``), the data from
the store (``_data.py``). Plotly's JavaScript is served from the installed ``plotly``
package, never from a CDN, so the dashboard works with no network."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response

from ._api import api_router
from ._data import DashboardError, ExperimentIndex, NotFound

STATIC = Path(str(resources.files("archsmith.dashboard") / "static"))

#: Only our own scripts run (no inline script, no ``onerror=`` attribute, nothing from
#: elsewhere): a second wall behind the pages putting user strings in as text only.
#: Plotly sets inline styles and draws its WebGL traces (parallel coordinates) with
#: code it compiles at run time, hence ``unsafe-inline`` styles and ``unsafe-eval``.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def plotly_js() -> Path:
    """The path of ``plotly.min.js`` inside the installed plotly package."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError(
            f"plotly.min.js is missing from the plotly package ({path}); reinstall it: pip install 'archsmith[dashboard]'"
        )
    return path


def create_app(root: str | os.PathLike[str], *, allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The dashboard over the experiment(s) under ``root``: ``root`` itself if it holds a
    store, else each of its direct children that holds one.

    ``allowed_hosts`` (for example ``["127.0.0.1", "localhost"]``) refuses requests whose
    ``Host`` header names another host, which keeps a page on another site from reading
    a dashboard bound to loopback through DNS rebinding; ``None`` accepts any.

    >>> app = create_app(".")  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    index = ExperimentIndex(Path(root))
    plotly = plotly_js()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        index.close()

    app = FastAPI(title="archsmith dashboard", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    app.include_router(api_router(index), prefix="/api")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"})

    def known(key: str) -> None:
        try:
            index.get(key)
        except NotFound as e:
            raise HTTPException(404, str(e)) from None
        except DashboardError:  # an unreadable store: its page shows the API's reason in an error panel
            pass

    @app.get("/", include_in_schema=False)
    def experiments_page() -> FileResponse:
        return page("index.html")

    @app.get("/experiments/{key}", include_in_schema=False)
    def experiment_page(key: str) -> FileResponse:
        known(key)
        return page("experiment.html")

    @app.get("/experiments/{key}/trials/{trial_id}", include_in_schema=False)
    def trial_page(key: str, trial_id: int) -> FileResponse:
        known(key)
        return page("trial.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_script() -> FileResponse:
        return FileResponse(plotly, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    return app
