"""The Ray engine's settings: checked when the config is built, with the fix named;
and what ``engine="ray"`` says where Ray is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from archsmith.experiment import ConfigError, ExperimentConfig


def test_concurrency_is_the_clusters_unless_given() -> None:
    assert ExperimentConfig(engine="ray").concurrency is None
    assert ExperimentConfig(engine="ray", concurrency=3).concurrency == 3
    assert ExperimentConfig().concurrency == 1  # the other engines keep their default
    assert ExperimentConfig(engine="process", concurrency=None).concurrency == 1
    config = ExperimentConfig(engine="ray")
    config.engine = "process"
    assert config.concurrency == 1


@pytest.mark.parametrize("address", [None, "auto", "ray://127.0.0.1:10001", "10.0.0.5:6379", "head-node:6379"])
def test_good_addresses(address: str | None) -> None:
    assert ExperimentConfig(engine="ray", ray_address=address).ray_address == address


@pytest.mark.parametrize("address", [5, "", "head-node", "ray://head-node", "host:0", "host:99999", "http://h:1"])
def test_bad_addresses(address: Any) -> None:
    with pytest.raises(ConfigError, match=r"ray_address .*(ray://host:10001|host:port)"):
        ExperimentConfig(engine="ray", ray_address=address)


@pytest.mark.parametrize("resources", [{"gpu": 0.25}, {"cpu": 2, "gpu": 2}, {"cpu": 0.5}, {"cpu": 0, "gpu": 1}])
def test_good_resources(resources: dict[str, float]) -> None:
    assert ExperimentConfig(engine="ray", resources_per_trial=resources).resources_per_trial == resources


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"tpu": 1}, "unknown resource 'tpu'.*'cpu', 'gpu'"),
        ({"cpu": -1}, r"resources_per_trial\['cpu'\] must be a non-negative number"),
        ({"cpu": "1"}, "non-negative number"),
        ({"gpu": float("nan")}, "non-negative number"),
        ({"gpu": True}, "non-negative number"),
        ({"gpu": 1.5}, "whole GPUs"),
        ({"cpu": 0, "gpu": 0}, "asks for nothing"),
        ([1], "must be a dict"),
    ],
)
def test_bad_resources(resources: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(engine="ray", resources_per_trial=resources)


@pytest.mark.parametrize("retries", [-1, 1.5, True, None])
def test_bad_max_retries(retries: Any) -> None:
    with pytest.raises(ConfigError, match="max_retries must be an integer >= 0"):
        ExperimentConfig(engine="ray", max_retries=retries)


def test_assignments_are_checked() -> None:
    config = ExperimentConfig(engine="ray")
    with pytest.raises(ConfigError, match="unknown resource"):
        config.resources_per_trial = {"gpus": 1}
    with pytest.raises(ConfigError, match="ray_address"):
        config.ray_address = "nowhere"


@pytest.mark.parametrize("settings", [{"ray_address": "auto"}, {"resources_per_trial": {"gpu": 1}}, {"max_retries": 3}])
def test_ray_settings_need_the_ray_engine(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=f"{next(iter(settings))} apply to engine='ray' only"):
        ExperimentConfig(engine="process", **settings)


def test_gpus_go_through_resources_per_trial() -> None:
    with pytest.raises(ConfigError, match=r"resources_per_trial=\{'gpu': 1\}, not gpus_per_trial"):
        ExperimentConfig(engine="ray", gpus_per_trial=1)


def test_an_unknown_engine_lists_ray_among_the_registered() -> None:
    with pytest.raises(ConfigError, match=r"unknown engine 'raay'; the registered engines are \[.*'ray'"):
        ExperimentConfig(engine="raay")


def test_without_ray_installed_the_error_says_how_to_install_it() -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoRay(importlib.abc.MetaPathFinder):  # as if ray were not installed
            def find_spec(self, name, path=None, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoRay())
        from archsmith.execution import ENGINES
        from archsmith.experiment import ConfigError, ExperimentConfig

        try:
            ExperimentConfig(engine="ray")
        except ConfigError as e:
            print("CONFIG:", e)
        from archsmith.execution._ray import import_ray
        try:
            import_ray()
        except Exception as e:
            print("ENGINE:", e)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "CONFIG: engine='ray' needs Ray, which is not installed: pip install 'archsmith[ray]'" in done.stdout, (
        done.stdout + done.stderr
    )
    assert "ENGINE: engine='ray' needs Ray: pip install 'archsmith[ray]'" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("keep", [-1, float("nan"), "60", True])
def test_bad_keep_actors_names_the_setting(keep: Any) -> None:
    pytest.importorskip("ray")
    from archsmith.execution import EngineError
    from archsmith.execution._ray import RayEngine

    with pytest.raises(EngineError, match="keep_actors must be seconds >= 0"):
        RayEngine(keep_actors=keep)
