"""docs/cli.md's "Exit codes and errors" table, row by row, each case run as a real
``python -m archsmith`` process: the exit code, one ``archsmith: error: ...`` line on
stderr naming the problem (never a traceback), nothing on stdout for an error; and a
reader that goes away (``| head -1``) or Ctrl-C ends quietly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsmith.experiment import STORE_FILE, Store, read_experiment

TIMEOUT = 120


def _reset_sigint() -> None:
    # A child inherits an ignored SIGINT (a test runner may ignore it); a terminal's
    # foreground job has it at its default, which is what Ctrl-C is tested against.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def archsmith(cwd: Path, *argv: str, text: bool = True) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "archsmith", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        preexec_fn=_reset_sigint,
    )


def run(cwd: Path, *argv: str) -> tuple[int, str, str]:
    process = archsmith(cwd, *argv)
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out, err


def _finished_store(path: Path, trials: int, *, status: str = "succeeded") -> None:
    """A store as a finished run leaves it (written through the Store API, no model needed)."""
    store = Store(path / STORE_FILE)
    store.set_meta("direction", "maximize")
    store.set_meta("status", "done")
    now = time.time()
    store.conn.execute("BEGIN")
    for i in range(1, trials + 1):
        store.add_trial({"h": i % 40, "op": f"conv{i % 7}", "kernel": (3, i % 5)})
        store.mark_running(i, "worker-0", now)
        if status == "succeeded":
            store.finish_trial(i, "succeeded", metric=float(i), objective=float(i), worker="worker-0", at=now)
        else:
            store.finish_trial(i, "failed", error="RuntimeError: out of memory", worker="worker-0", at=now)
    store.conn.execute("COMMIT")
    store.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``base/archsmith-experiments/`` holding one experiment per situation of the table."""
    base = tmp_path_factory.mktemp("exit-codes")
    root = base / "archsmith-experiments"
    _finished_store(root / "ok", 5)
    _finished_store(root / "big", 2000)  # output larger than a pipe's buffer
    _finished_store(root / "all-failed", 3, status="failed")
    Store(root / "empty" / STORE_FILE).close()  # a run that has not proposed a trial yet
    (root / "garbage").mkdir()
    (root / "garbage" / STORE_FILE).write_bytes(b"\xff\xfe\x00garbage" * 100)
    (root / "zero").mkdir()
    (root / "zero" / STORE_FILE).write_bytes(b"")
    (root / "other-sqlite").mkdir()
    with sqlite3.connect(root / "other-sqlite" / STORE_FILE) as other:  # SQLite, but not archsmith's
        other.execute("CREATE TABLE notes (text TEXT)")
    other.close()
    (root / "not-an-experiment").mkdir()
    # A store whose first pages read fine but whose trial pages are damaged: SQLite
    # fails in the middle of reading it (an I/O error or a bad disk looks the same).
    _finished_store(root / "damaged", 2000)
    with sqlite3.connect(root / "damaged" / STORE_FILE) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(root / "damaged" / STORE_FILE, "r+b") as f:
        f.seek(size * (pages // 2))
        f.write(b"\xff" * size * 8)
    (base / "a-file").write_text("not a directory\n")
    (base / "empty-dir").mkdir()
    (base / "no-experiments-here").mkdir()
    return base


# One row per line of the table: (argv, exit code, what the message says). "{base}" is
# the directory the command runs in.
ROWS = [
    # 0: success
    pytest.param(["list"], 0, "experiments in archsmith-experiments", id="0-list"),
    pytest.param(["list", "empty-dir"], 0, "no experiments in empty-dir", id="0-list-an-empty-directory"),
    pytest.param(["show", "ok"], 0, "best: trial 5", id="0-show"),
    pytest.param(["trials", "ok", "--format", "csv"], 0, "id,status,objective", id="0-trials"),
    pytest.param(["export", "ok", "--out", "best.json"], 0, "", id="0-export"),
    pytest.param(["show", "all-failed"], 0, "no trial has succeeded yet", id="0-show-all-failed"),
    pytest.param(["--version"], 0, "archsmith ", id="0-version"),
    # 2: usage errors
    pytest.param([], 2, "no command given; choose one of: list, show, trials, logs, export", id="2-no-command"),
    pytest.param(["nope"], 2, "unknown command 'nope'; choose one of: list, show", id="2-unknown-command"),
    pytest.param(["show"], 2, "show: the following arguments are required: EXP", id="2-missing-argument"),
    pytest.param(["show", "ok", "--top", "0"], 2, "show: argument --top: '0' is not a positive integer", id="2-bad-top"),
    pytest.param(["export", "ok", "--top", "x"], 2, "export: argument --top: 'x' is not a positive integer", id="2-bad-top-x"),
    pytest.param(["trials", "ok", "--format", "xml"], 2, "trials: argument --format: invalid choice: 'xml'", id="2-bad-format"),
    pytest.param(["trials", "ok", "--status", "done"], 2, "trials: argument --status: invalid choice", id="2-bad-status"),
    pytest.param(["export", "ok", "--bogus"], 2, "export: unrecognized arguments: --bogus (see `archsmith export --help`)", id="2-unknown-option"),
    # 2: not an experiment
    pytest.param(["show", "archsmith-experiments/not-an-experiment"], 2, "is not an archsmith experiment (no experiment.db in it)", id="2-a-directory-not-an-experiment"),
    pytest.param(["trials", "no-such-name"], 2, "'no-such-name' is not an archsmith experiment: no such directory", id="2-unknown-name"),
    pytest.param(["list", "missing-dir"], 2, "no experiments: missing-dir does not exist (looked in {base}/missing-dir)", id="2-list-a-missing-directory"),
    pytest.param(["list", "a-file"], 2, "a-file is a file, not a directory of experiments", id="2-list-a-file"),
    # 2: not an archsmith store
    pytest.param(["show", "garbage"], 2, "is not an archsmith experiment store", id="2-garbage-bytes-store"),
    pytest.param(["trials", "zero"], 2, "is not an archsmith experiment store", id="2-empty-store-file"),
    pytest.param(["export", "other-sqlite"], 2, "is not an archsmith experiment store", id="2-another-sqlite-database"),
    # 2: no trials yet, nothing to export
    pytest.param(["show", "empty"], 2, "experiment 'empty' has no trials yet", id="2-show-no-trials"),
    pytest.param(["trials", "empty"], 2, "experiment 'empty' has no trials yet", id="2-trials-no-trials"),
    pytest.param(["export", "empty"], 2, "has no trials yet: there is nothing to export", id="2-export-no-trials"),
    pytest.param(["export", "all-failed"], 2, "has no succeeded trial yet: there is nothing to export", id="2-export-none-succeeded"),
    # 1: the store fails while being read, --out cannot be written
    pytest.param(["trials", "damaged"], 1, "SQLite says: database disk image is malformed", id="1-damaged-store-trials"),
    pytest.param(["show", "damaged"], 1, "cannot read the experiment store 'archsmith-experiments/damaged/experiment.db'", id="1-damaged-store-show"),
    pytest.param(["export", "damaged"], 1, "restore it from a copy", id="1-damaged-store-export"),
    pytest.param(["export", "ok", "--out", "empty-dir"], 1, "cannot write --out 'empty-dir': it is a directory; give a file name, e.g. --out empty-dir/best.json", id="1-out-is-a-directory"),
    pytest.param(["export", "ok", "--out", "missing/dir/best.json"], 1, "cannot write --out 'missing/dir/best.json': the directory 'missing/dir' does not exist; create it first", id="1-out-under-a-missing-directory"),
    pytest.param(["export", "ok", "--out", "a-file/best.json"], 1, "cannot write --out 'a-file/best.json': 'a-file' is not a directory", id="1-out-under-a-file"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "message"), ROWS)
def test_each_row_of_the_exit_code_table(base: Path, argv: list[str], code: int, message: str) -> None:
    got, out, err = run(base, *argv)
    message = message.format(base=base)
    assert got == code, (got, out, err)
    assert "Traceback" not in err and "Exception ignored" not in err
    if code == 0:
        assert message in out + err
        return
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("archsmith: error: "), err
    assert message in err, err


def test_list_without_the_default_directory_says_where_it_looked(tmp_path: Path) -> None:
    got, out, err = run(tmp_path, "list")
    assert got == 0 and err == ""
    assert out.strip() == (
        f"no experiments: ./archsmith-experiments does not exist (looked in {tmp_path / 'archsmith-experiments'}); "
        "run a search first, or pass the directory: archsmith list DIR"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
@pytest.mark.parametrize("argv", [["trials", "big"], ["export", "ok"], ["show", "ok"]], ids=" ".join)
def test_output_that_cannot_be_written_exits_1(base: Path, argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        process = subprocess.run(
            [sys.executable, "-m", "archsmith", *argv], cwd=base, stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert process.returncode == 1
    assert process.stderr == "archsmith: error: cannot write the output: No space left on device\n"


def test_export_writes_the_file_it_was_given(base: Path) -> None:
    got, _, err = run(base, "export", "ok", "--out", "exported.json")
    assert got == 0 and "wrote the best sample of ok to exported.json" in err
    assert (base / "exported.json").read_text().startswith("{")


@pytest.mark.parametrize(
    "argv",
    [
        ["trials", "big"],
        ["trials", "big", "--format", "json"],
        ["trials", "big", "--format", "csv"],
        ["show", "big", "--top", "2000"],
        ["export", "big", "--top", "2000"],
        ["list"],
    ],
    ids=" ".join,
)
def test_a_reader_that_goes_away_ends_it_quietly(base: Path, argv: list[str]) -> None:
    # `archsmith trials big | head -1`: read one line, close the pipe, the writer stops.
    process = archsmith(base, *argv)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read()
    process.wait(timeout=TIMEOUT)
    assert first
    assert process.returncode == 0, err
    assert err == ""


def test_the_shell_pipeline_to_head(base: Path) -> None:
    # The same through a real shell pipeline, with pipefail so archsmith's own code counts.
    script = f'set -o pipefail; "{sys.executable}" -m archsmith trials big --format csv | head -1'
    result = subprocess.run(["bash", "-c", script], cwd=base, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("id,status,objective") and result.stdout.count("\n") == 1
    assert result.stderr == ""


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_ctrl_c_ends_with_130_and_no_traceback(base: Path, fmt: str) -> None:
    process = archsmith(base, "trials", "big", "--format", fmt, text=False)  # bytes: a read may split a character
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(1)  # it has started writing: it blocks once the pipe is full
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    process.stdout.read()  # drain, so that nothing is left blocked
    err = process.stderr.read().decode()
    process.wait(timeout=TIMEOUT)
    assert process.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Exception ignored" not in err


def test_the_damaged_store_is_an_archsmith_store_until_it_is_read(base: Path) -> None:
    # What separates exit 1 from 2: the damaged store opens as an archsmith store
    # (its first pages are fine) and fails in the middle of a read.
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):  # not StoreError: it opened as a store
        with read_experiment(base / "archsmith-experiments" / "damaged") as store:
            store.trials()
