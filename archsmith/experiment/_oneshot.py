"""The run of a one-shot experiment: train the supernet (the strategy's loop),
record each epoch in the store (meta ``oneshot_history``: the metrics;
``oneshot_probabilities``: the learned architecture probabilities, for the algorithms
that learn them), and store the final ranking of architectures as
succeeded trials (with the costs of ``config.profilers``), so ``export_top_models``,
``archsmith show`` and ``archsmith export`` read a one-shot search like any other.

``config.constraints`` go to the algorithm's search: RandomOneShot and ENAS rank
only architectures that meet them; the algorithms that learn a distribution
(DARTS, GumbelDARTS, Proxyless) refuse them before the run starts.

The supernet is checkpointed after every epoch (``supernet.pt`` beside the
store); ``run(resume=True)`` continues from the last whole epoch. A run that
stops early (``max_duration``, or a callback such as the evaluator's
``EarlyStopping``) says after which epoch and why, in its final message and in
the store (meta ``oneshot_stopped``).
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from archsmith.strategy import OneShotStrategy

from ._progress import ProgressView
from ._store import Store

if TYPE_CHECKING:
    from ._experiment import Experiment

CHECKPOINT_FILE = "supernet.pt"


def architecture_probabilities(strategy: OneShotStrategy) -> dict[str, list[float]]:
    """label -> the probability of each of its candidates (in the space's order) the
    algorithm has learned; empty for algorithms without architecture parameters
    (RandomOneShot, ENAS). Stored per epoch (meta ``oneshot_probabilities``) for the
    dashboard's plot of how the architecture converged."""
    supernet = getattr(strategy, "supernet", None)
    decisions = getattr(supernet, "decisions", None)
    if decisions is None:
        return {}
    return {label: [float(p) for p in probs] for label, probs in decisions.probabilities().items()}


def run_oneshot(exp: Experiment, store: Store) -> None:
    """Train ``exp``'s supernet, recording into ``store`` (created or resumed by the
    experiment, which holds the driver lock)."""
    strategy, config = exp.strategy, exp.config
    assert isinstance(strategy, OneShotStrategy)
    # an algorithm that cannot honour them says so before the run is recorded as started
    constraints = strategy.check_constraints(list(getattr(config, "constraints", None) or []))
    seed = exp.begin(store)
    score = strategy.score_name
    store.set_meta("mode", "oneshot")
    store.set_meta("status", "running")
    store.set_meta("driver", {"pid": os.getpid(), "host": socket.gethostname()})
    view = ProgressView(config.name or str(exp.directory), score)  # epoch lines, no live table
    history: list[dict[str, Any]] = list(store.get_meta("oneshot_history", []))
    probabilities: list[dict[str, Any]] = list(store.get_meta("oneshot_probabilities", []))
    started = time.time()

    def on_epoch(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        del history[epoch:]  # a resumed run repeats no epoch, but never keep stale ones
        history.append({"epoch": epoch, **metrics})
        del probabilities[epoch:]
        learned = architecture_probabilities(strategy)
        if learned:
            probabilities.append({"epoch": epoch, "probabilities": learned})
        with store.transaction():
            store.set_meta("oneshot_history", history)
            if learned:
                store.set_meta("oneshot_probabilities", probabilities)
            store.set_meta("heartbeat", time.time())
        view.epoch_finished(epoch, epochs, metrics, time.time() - started)

    status, message = "interrupted", "interrupted (Ctrl-C); run(resume=True) continues from the last epoch"
    try:
        limit = config.max_duration_seconds
        ranking = strategy.search(
            exp.space,
            exp.evaluator,
            seed=seed,
            checkpoint=exp.directory / CHECKPOINT_FILE,
            on_epoch=on_epoch,
            deadline=None if limit is None else started + limit,
            device="cuda" if config.gpus_per_trial else None,  # check_gpus made sure there is one
            constraints=constraints,
        )
        now = time.time()
        with store.transaction():
            store.delete_trials()  # a resumed, finished run ranks afresh
            for sample, ranked_score in ranking:
                sample = exp.search_space.validate(sample)
                trial_id = store.add_trial(sample, arch_key=exp.search_space.architecture_key(sample))
                metric = {score: ranked_score}
                if getattr(config, "profilers", None):  # each ranked architecture's costs, as a trial's
                    metric = exp._with_costs(sample, metric)
                store.finish_trial(trial_id, "succeeded", metric=metric, objective=ranked_score, at=now)
        status = "done"
        best = ranking[0] if ranking else None
        stopped = strategy.stopped_after
        reason, stop_record = "", None
        if stopped is not None:
            why = strategy.stop_reason or f"max_duration {config.max_duration} reached"
            reason = (
                f" (stopped after epoch {stopped + 1}: {why})"
                if strategy.stop_reason
                else f" ({why} after epoch {stopped + 1})"
            )
            stop_record = {"after_epoch": stopped, "reason": why}
        store.set_meta("oneshot_stopped", stop_record)  # None: ran to the end (a resumed run forgets an old stop)
        message = f"finished{reason}: {len(ranking)} architectures ranked" + (
            f"; best {score} = {best[1]:.6g}: {best[0]}" if best else ""
        )
    except KeyboardInterrupt:
        pass
    except BaseException as e:
        message = f"stopped by an error: {type(e).__name__}: {e}"
        raise
    finally:
        store.set_meta("status", status)
        store.set_meta("ended_at", time.time())
        view.stop(message)
    exp.supernet = strategy.supernet
