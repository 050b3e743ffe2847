"""``engine="ray"`` without an address: a private Ray on loopback, started for the
run and stopped after it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from archsmith import strategy as strategies
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, Store

from ._execution_helpers import wait_gone, worker_processes
from ._ray_helpers import Net, with_pid, work

ray = pytest.importorskip("ray")


def _pids_and_values(workdir: Path) -> tuple[set[int], set[float]]:
    store = Store(workdir / "experiment.db", readonly=True)
    try:
        trials = store.trials()
    finally:
        store.close()
    assert trials and all(t.status == "succeeded" for t in trials), [(t.status, t.error) for t in trials]
    return {int(t.metric["pid"]) for t in trials}, {t.objective for t in trials}


def test_a_drivers_next_ray_run_takes_its_kept_actors_and_loads_its_own_payload(tmp_path: Path) -> None:
    """On the user's own Ray, idle actors wait for the next run (no new worker
    processes: seconds saved), which runs its own evaluator in them; they go at
    release_ray_actors() or when their time is up."""
    from archsmith.execution import release_ray_actors
    from archsmith.execution._ray import RayEngine
    from archsmith.execution._trial import TrialPayload

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        runs, actors = [], set()
        for value in (1.0, 2.0):
            config = ExperimentConfig(
                engine="ray", concurrency=2, max_trials=4, direction="maximize", seed=0, workdir=tmp_path / str(value)
            )
            Experiment(Net(), FunctionalEvaluator(with_pid, value=value), strategies.Random(), config).run()
            runs.append(_pids_and_values(tmp_path / str(value)))
            if not actors:  # trials start on the first actor ready; the second may still be starting: wait
                deadline = time.time() + 120
                while len(actors := worker_processes()) < 2 and time.time() < deadline:
                    time.sleep(0.1)
        (first_pids, first_values), (second_pids, second_values) = runs
        assert first_values == {1.0} and second_values == {2.0}  # each run's own payload
        assert len(actors) == 2 and first_pids <= actors
        assert second_pids <= actors  # the kept processes: no new actor started
        assert ray.is_initialized()  # the user's Ray is left up
        assert release_ray_actors() == 3  # two trial actors and the inbox
        assert not wait_gone(actors, deadline=30.0), "released actors are killed"
        assert release_ray_actors() == 0

        engine = RayEngine(concurrency=1, keep_actors=0.5)
        engine.start(TrialPayload(Net, (), {}, FunctionalEvaluator(with_pid, value=3.0)))
        pid = engine._slots[0].pid
        assert pid is not None
        engine.shutdown()
        time.sleep(1.5)  # past keep_actors: the reaper has killed them
        assert release_ray_actors() == 0
        assert not wait_gone({pid}, deadline=30.0)
    finally:
        release_ray_actors()
        ray.shutdown()


def test_a_search_on_a_local_ray_started_and_stopped_for_it(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = ExperimentConfig(engine="ray", concurrency=2, max_trials=3, direction="maximize", seed=0, workdir=tmp_path)
    experiment = Experiment(Net(), FunctionalEvaluator(work, mode="faults", fault={}), strategies.Random(), config)
    experiment.run()
    assert not ray.is_initialized()  # the Ray it started is stopped
    store = Store(tmp_path / "experiment.db", readonly=True)
    try:
        trials = store.trials()
        assert len(trials) == 3 and all(t.status == "succeeded" for t in trials)
        assert all(len(store.intermediates(t.id)) == 2 for t in trials)
    finally:
        store.close()
    printed = capfd.readouterr()
    for t in trials:
        assert f"trial {t.id} node=head" in (tmp_path / "trials" / str(t.id) / "output.log").read_text()
        assert f"trial {t.id} node=" not in printed.out + printed.err
