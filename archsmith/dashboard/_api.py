"""The dashboard's JSON API (``/api``): routes only, over :class:`ExperimentIndex`.

Every answer is read-only. Errors are JSON ``{"detail": ...}``: 404 for an unknown
experiment, trial or figure (and every path outside the root), 503 with the
reason for a store that cannot be read; never a stack trace.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from archsmith.experiment import export_text, top_trials
from archsmith.experiment._store import ARCHITECTURE_FILE, TRIALS_DIR

from ._architecture import architecture
from ._data import DashboardError, ExperimentIndex, NotFound
from ._figures import figure
from ._serialize import metrics_of, number

__all__ = ["api_router", "trial_detail"]

logger = logging.getLogger(__name__)

#: Lines of a trial's output log the trial page shows.
LOG_TAIL_LINES = 200
_LOG_TAIL_BYTES = 256 * 1024


def _log_tail(path: Any) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(size - _LOG_TAIL_BYTES, 0))
            text = f.read().decode("utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return ""
    return "\n".join(deque(text.splitlines(), maxlen=LOG_TAIL_LINES))


def trial_detail(index: ExperimentIndex, key: str, trial_id: int) -> dict[str, Any]:
    """TRIAL plus intermediates, log tail, full error and architecture."""
    data = index.get(key)
    with data._lock:
        record = data.record(trial_id)
        steps = data.intermediates([trial_id])[trial_id]
        out = dict(data.trials[trial_id])
    out["error"] = record.error
    out["output"] = record.output
    out["intermediates"] = [
        {
            "step": step,
            "metrics": metrics_of(metric, data.objectives) if metric is not None else {},
            "objective": number(objective),
        }
        for step, metric, objective in steps
    ]
    log = data.directory / TRIALS_DIR / str(trial_id) / "output.log"
    # a log symlinked out of the experiment's directory is not served
    out["log_tail"] = _log_tail(log) if index._inside(log) or not log.exists() else ""
    tree = data.architecture(trial_id)
    if not _is_tree(tree):
        # stores of archsmith before the architectures table kept it beside the log
        recorded = data.directory / TRIALS_DIR / str(trial_id) / ARCHITECTURE_FILE
        tree = _recorded(recorded) if index._inside(recorded) else None
    out["architecture"] = architecture(data.meta, record.sample, tree)
    return out


#: A recorded module tree larger than this is not read (a sane one is well under 1 MB).
_ARCHITECTURE_BYTES = 8 * 1024 * 1024


def _recorded(path: Any) -> dict[str, Any] | None:
    """The module tree the trial recorded, or None (absent, too large, not one)."""
    try:
        with open(path, "rb") as f:
            text = f.read(_ARCHITECTURE_BYTES + 1)
    except OSError:
        return None
    if len(text) > _ARCHITECTURE_BYTES:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if _is_tree(found) else None


def _is_tree(found: Any) -> bool:
    return isinstance(found, dict) and isinstance(found.get("modules"), list)


def top_json(index: ExperimentIndex, key: str, k: int) -> str:
    """The ``k`` best samples as ``archsmith export --top k`` writes them."""
    data = index.get(key)
    with data._lock:
        data.refresh()
        with data.snapshot() as store:
            samples = [t.sample for t in top_trials(store, k)]
    if not samples:
        raise NotFound(f"experiment {key!r} has no succeeded trial yet: there is nothing to download")
    return export_text(samples, k, as_list=True if len(samples) < k else None) + "\n"


def _warm_up() -> None:
    """Import what the first trial page and importance figure need (torch, Optuna's
    evaluators: seconds on a cold start) while the user looks at the list."""
    try:
        import optuna.importance  # noqa: F401

        import archsmith.nn  # noqa: F401
    except Exception:  # a broken install shows where it is used, with the reason
        logger.debug("warm-up import failed", exc_info=True)


def api_router(index: ExperimentIndex) -> APIRouter:
    """The API's routes over ``index``; mount with ``app.include_router(router, prefix="/api")``."""
    threading.Thread(target=_warm_up, name="archsmith-dashboard-warm-up", daemon=True).start()
    router = APIRouter()

    def answer(compute: Any) -> Any:
        try:
            result = compute()
            # straight to JSON text: FastAPI's own encoder walks every value (seconds at 20,000 trials)
            return JSONResponse(result) if isinstance(result, dict) else result
        except DashboardError as e:
            return JSONResponse({"detail": str(e)}, status_code=e.status)
        except Exception as e:  # a bug or a store's odd content: a JSON reason, never a traceback
            logger.exception("dashboard request failed")
            return JSONResponse({"detail": f"internal error: {type(e).__name__}: {e}"}, status_code=500)

    @router.get("/experiments")
    def experiments() -> Any:
        return answer(lambda: {"root": str(index.root), "experiments": index.summaries()})

    @router.get("/experiments/{key}")
    def experiment(key: str) -> Any:
        return answer(lambda: index.get(key).detail())

    @router.get("/experiments/{key}/trials")
    def trials(key: str, since: str | None = None) -> Any:
        def read() -> Any:
            data = index.get(key)
            with data._lock:
                rows, complete = data.changed_since(since)
                if not complete:
                    return {"version": data.version, "complete": False, "trials": rows}

                def whole() -> bytes:  # every trial: encoded once per version, for every page that loads
                    return _json_bytes({"version": data.version, "complete": True, "trials": rows})

                return Response(data.derived("trials_body", whole), media_type="application/json")

        return answer(read)

    @router.get("/experiments/{key}/trials/{trial_id}")
    def trial(key: str, trial_id: int) -> Any:
        return answer(lambda: trial_detail(index, key, trial_id))

    @router.get("/experiments/{key}/figures/{name}")
    def figures(key: str, name: str) -> Any:
        def read() -> Response:
            data = index.get(key)
            with data._lock:
                built = figure(data, name)
                # encoded once per figure and version: a figure of 20,000 trials is megabytes of JSON
                body = data.derived(f"body:{name}", lambda: _json_bytes(built), key=(id(built), data.version))
            return Response(body, media_type="application/json")

        return answer(read)

    @router.get("/experiments/{key}/top")
    def top(key: str, k: int = Query(5, ge=1, le=10000)) -> Any:
        def read() -> Response:
            text = top_json(index, key, k)
            return Response(
                text,
                media_type="application/json",
                headers={"Content-Disposition": f'attachment; filename="{_safe_filename(key)}-top{k}.json"'},
            )

        return answer(read)

    return router


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _safe_filename(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key) or "experiment"
