"""The web app around the API: pages, static files (plotly.js from the installed
package), 404s for unknown keys and traversal attempts, security headers, and the
``archsmith dashboard`` command (loopback by default, a warning otherwise)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from archsmith.cli import main
from archsmith.cli._dashboard import exposure_warning, is_loopback
from archsmith.dashboard import create_app
from archsmith.dashboard._app import STATIC, plotly_js

from ._experiments import XSS_KEY

KEY = quote(XSS_KEY, safe="")
PAGES = ["/", f"/experiments/{KEY}", f"/experiments/{KEY}/trials/1", "/experiments/broken"]


@pytest.fixture(scope="module")
def client(dashboard_root: Path) -> TestClient:
    return TestClient(create_app(dashboard_root))


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_served_with_a_strict_content_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy
        and "default-src 'self'" in policy
        and "unsafe-inline" not in policy.split("style-src")[0]
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    # The pages are the same shells for every experiment: no user string is in the HTML.
    assert "<img src=x" not in response.text


def test_plotly_comes_from_the_installed_package_and_the_pages_use_nothing_else(client: TestClient) -> None:
    response = client.get("/vendor/plotly.min.js")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    assert response.content == plotly_js().read_bytes()
    for page in ("index.html", "experiment.html", "trial.html"):
        html = (STATIC / page).read_text()
        assert "http://" not in html and "https://" not in html and "//cdn" not in html
    for name in ("common.js", "index.js", "experiment.js", "trial.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/experiments/nope",
        "/experiments/nope/trials/1",
        "/experiments/%2e%2e",
        "/experiments/..%2F..",
        "/experiments/..%2f..%2fetc",
        "/experiments/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/experiments/.%2e/trials/1",
        "/experiments/broken%2F..%2F..",
        "/api/experiments/%2e%2e",
        "/api/experiments/..%2F..%2Fetc",
        "/api/experiments/%2e%2e%2f%2e%2e%2fetc/trials",
        "/static/..%2F_app.py",
        "/static/%2e%2e/_app.py",
        "/static/%2e%2e%2f%2e%2e%2fexperiment%2f_store.py",
        "/vendor/..%2F..%2Fpyproject.toml",
    ],
)
def test_unknown_keys_and_traversal_attempts_are_404_and_expose_nothing(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert response.headers["content-type"].startswith("application/json")
    text = response.text
    assert "root:" not in text and "import " not in text and "Traceback" not in text


def test_a_trial_id_that_is_not_a_number_is_refused(client: TestClient) -> None:
    assert client.get(f"/experiments/{KEY}/trials/abc").status_code == 422
    assert client.get(f"/experiments/{KEY}/trials/..%2F..").status_code == 404


def test_hosts_other_than_the_allowed_ones_are_refused(dashboard_root: Path) -> None:
    guarded = TestClient(
        create_app(dashboard_root, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://127.0.0.1"
    )
    assert guarded.get("/").status_code == 200
    assert guarded.get("/", headers={"host": "localhost:8080"}).status_code == 200
    assert guarded.get("/api/experiments", headers={"host": "attacker.example"}).status_code == 400


def test_loopback_hosts_and_the_warning_for_the_others() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))
    assert exposure_warning("127.0.0.1", 8080) is None
    warning = exposure_warning("0.0.0.0", 8080)
    assert warning and "0.0.0.0:8080" in warning and "no login" in warning and "--host 127.0.0.1" in warning


def test_bad_directories_ports_and_hosts_are_usage_errors(
    dashboard_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["dashboard", str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["dashboard", str(dashboard_root), "--port", "70000"]) == 2
    assert "not a port number" in capsys.readouterr().err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        assert main(["dashboard", str(dashboard_root), "--port", str(busy.getsockname()[1])]) == 2
        assert "is in use; choose another with --port" in capsys.readouterr().err
    finally:
        busy.close()
    assert main(["dashboard", str(dashboard_root), "--host", "no-such-host.invalid", "--port", "0"]) == 2
    assert "is not an address of this machine" in capsys.readouterr().err


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """``archsmith dashboard ARGS`` in a subprocess; it and the URL it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "archsmith", "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(f"no address printed: {line!r} {process.communicate()[1]}")
    return process, line.split(" at ")[1].split()[0]


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    return process.returncode, err


#: Sent byte for byte (an HTTP client would remove the dot segments first).
RAW_TRAVERSALS = [
    "/experiments/..",
    "/experiments/../..",
    "/experiments/../../etc/passwd",
    "/api/experiments/..",
    "/api/experiments/../../etc",
    "/api/experiments/%2e%2e/%2e%2e/etc",
    "/static/../_app.py",
    "/static/../../experiment/_store.py",
    "/vendor/../../pyproject.toml",
]


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_command_serves_on_loopback_and_stops_on_ctrl_c(dashboard_root: Path) -> None:
    process, url = _start([str(dashboard_root), "--port", "0"])
    try:
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.get(url + "api/experiments", timeout=20).json()
        assert sorted(s["key"] for s in answer["experiments"]) == sorted(["broken", XSS_KEY])
        for path in RAW_TRAVERSALS:
            status, body = _raw_get(url, path)
            assert status == 404, path
            assert b"root:" not in body and b"import" not in body and b"Traceback" not in body
        # A loopback dashboard answers only to this machine's names (DNS rebinding).
        assert httpx.get(url, headers={"host": "attacker.example"}, timeout=20).status_code == 400
    finally:
        code, err = _stop(process)
    # Ctrl-C ends it as every command ends on Ctrl-C: quietly, with 130 (128 + SIGINT).
    assert code == 130 and "warning" not in err and "Traceback" not in err


def test_the_command_warns_when_it_listens_beyond_this_machine(dashboard_root: Path) -> None:
    process, url = _start([str(dashboard_root), "--host", "0.0.0.0", "--port", "0"])
    try:
        port = url.rstrip("/").rsplit(":", 1)[1]
        deadline = time.monotonic() + 20
        while True:  # served on every address, loopback included, under any host name
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=20).status_code == 200
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        code, err = _stop(process)
    assert code == 130
    assert "warning: the dashboard listens on 0.0.0.0" in err
