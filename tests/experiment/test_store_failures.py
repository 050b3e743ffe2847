"""The store when its file is in trouble, with real files and real other processes: a
lock held by another program, a read-only file or file system, a corrupted file, a
creation killed half-way, the file deleted or replaced under a run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archsmith.experiment import STORE_FILE, Store, StoreError

SCRIPTS = Path(__file__).parent / "scripts"
META = {"labels": ["width"], "seed": 3}


def make_store(path: Path, trials: int = 3) -> Path:
    store = Store.create(path, META)
    try:
        for i in range(trials):
            with store.transaction():
                trial_id = store.add_trial({"width": i}, arch_key=f"w{i}")
                store.finish_trial(trial_id, "succeeded", metric=float(i), objective=float(i), at=time.time())
    finally:
        store.close()
    return path


def read_all(path: Path, readonly: bool) -> int:
    store = Store(path, readonly=readonly)
    try:
        return len(store.trials())
    finally:
        store.close()


# A lock held by another program ----------------------------------------------------------
HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT OR REPLACE INTO meta VALUES ('holder', '1')")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def is_write_locked(path: Path) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        assert "locked" in str(e)
        return True
    finally:
        probe.close()


def hold_lock(path: Path, kind: str, seconds: float) -> subprocess.Popen[str]:
    """Another program holding ``path``'s write lock: a ``sqlite3`` shell inside
    ``BEGIN IMMEDIATE`` (until its input closes), or a Python process in ``BEGIN
    EXCLUSIVE`` for ``seconds``."""
    if kind == "sqlite3-shell":
        if shutil.which("sqlite3") is None:
            pytest.skip("no sqlite3 command line shell installed")
        holder = subprocess.Popen(["sqlite3", str(path)], stdin=subprocess.PIPE, text=True)
        assert holder.stdin is not None
        holder.stdin.write("BEGIN IMMEDIATE;\nINSERT OR REPLACE INTO meta VALUES ('holder', '1');\n")
        holder.stdin.flush()
    else:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None and holder.stdout.readline() == "LOCKED\n"
    deadline = time.monotonic() + 10
    while not is_write_locked(path):
        assert time.monotonic() < deadline and holder.poll() is None, "the other program never took the lock"
        time.sleep(0.01)
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    if holder.stdin is not None:
        holder.stdin.write("ROLLBACK;\n.quit\n")
        holder.stdin.close()
    holder.wait(timeout=10)


@pytest.mark.parametrize("kind", ["sqlite3-shell", "python"])
def test_a_lock_held_past_patience_is_reported_while_waiting_then_a_store_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], kind: str
) -> None:
    path = make_store(tmp_path / STORE_FILE)
    holder = hold_lock(path, kind, seconds=30)
    try:
        store = Store(path, lock_patience=2.5)  # opening an up-to-date store takes no write lock
        reader = Store(path, readonly=True)
        started = time.monotonic()
        assert len(reader.trials()) == 3 and reader.get_meta("holder") is None  # never blocked by the writer
        assert time.monotonic() - started < 0.5
        with pytest.raises(StoreError) as caught:
            store.add_trial({"width": 9})
        waited = time.monotonic() - started
    finally:
        if holder.stdout is not None:  # the Python holder: it would sleep on
            holder.kill()
        release(holder)
    assert 2.4 <= waited < 6
    message = str(caught.value)
    assert str(path) in message and "locked by another program" in message
    assert "sqlite3 shell with an open transaction" in message and "COMMIT or ROLLBACK" in message
    err = capfd.readouterr().err
    assert f"waiting for {path}: it is locked by another program" in err, err
    assert err.count("waiting for") == 1  # after 2 s, then every 10 s
    store.add_trial({"width": 9})  # the lock gone, it writes again
    assert [t.sample for t in reader.trials()][-1] == {"width": 9}
    store.close()
    reader.close()


@pytest.mark.parametrize("write", ["set_meta", "add_trial", "transaction", "requeue_unfinished", "open_old_schema"])
def test_every_write_waits_for_a_lock_that_is_released(tmp_path: Path, write: str) -> None:
    path = make_store(tmp_path / STORE_FILE)
    if write == "open_old_schema":  # opening a store that needs its schema updated writes
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM meta WHERE key = 'store_id'")
        conn.close()
    store = None if write == "open_old_schema" else Store(path, lock_patience=30)
    holder = hold_lock(path, "python", seconds=1.0)
    started = time.monotonic()
    try:
        if store is None:
            store = Store(path, lock_patience=30)
        elif write == "set_meta":
            store.set_meta("status", "running")
        elif write == "add_trial":
            store.add_trial({"width": 5})
        elif write == "transaction":
            with store.transaction():
                store.add_trial({"width": 5})
                store.set_meta("status", "running")
        else:
            store.requeue_unfinished()
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
    assert 0.5 < waited < 10, waited
    assert store.get_meta("holder") is None  # the other program's write was rolled back, ours landed
    store.close()


def test_readers_do_not_block_a_writer(tmp_path: Path) -> None:
    path = make_store(tmp_path / STORE_FILE)
    reader = Store(path, readonly=True)
    store = Store(path, lock_patience=1)
    try:
        reader.conn.execute("BEGIN")  # a long read snapshot, as `archsmith show` takes
        assert len(reader.trials()) == 3
        started = time.monotonic()
        for i in range(20):
            with store.transaction():
                store.add_trial({"width": i})
        assert time.monotonic() - started < 1
        assert len(reader.trials()) == 3  # its snapshot
        reader.conn.execute("COMMIT")
        assert len(reader.trials()) == 23
    finally:
        reader.close()
        store.close()


# Read-only files, directories and file systems ------------------------------------------
OPEN_AS_ANOTHER_USER = """
import os, sys
from archsmith.experiment import Store, StoreError
if os.geteuid() == 0:  # root ignores permissions: drop to nobody, archsmith already imported
    os.setgid(65534)
    os.setuid(65534)
try:
    if sys.argv[2] == "create":
        store = Store.create(sys.argv[1], {"seed": 1})
    else:
        store = Store(sys.argv[1], readonly=sys.argv[2] == "read")
    print("OK", len(store.trials()))
except StoreError as e:
    print("StoreError:", e)
"""


@pytest.fixture
def user_dir() -> Iterator[Path]:
    """A directory the unprivileged user opening stores owns (under /tmp, which it can reach)."""
    directory = Path(tempfile.mkdtemp(prefix="archsmith-store-"))
    os.chmod(directory, 0o755)
    yield directory
    for p in directory.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    shutil.rmtree(directory)


def open_as_user(path: Path, how: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", OPEN_AS_ANOTHER_USER, str(path), how], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def give_to_user(*paths: Path) -> None:
    if os.geteuid() == 0:
        for p in paths:
            os.chown(p, 65534, 65534)


def test_a_read_only_store_file_is_refused_for_writing_with_the_fix_and_read_as_it_is(user_dir: Path) -> None:
    path = make_store(user_dir / "exp" / STORE_FILE)
    give_to_user(path.parent, path)
    os.chmod(path, 0o444)
    before = path.read_bytes()
    out = open_as_user(path, "write")
    assert out == (
        f"StoreError: {path} is read-only (permissions r--r--r--): make it writable (chmod u+w {path}) to run or "
        "resume; reading it (archsmith show / Experiment.trials) works as it is"
    )
    assert open_as_user(path, "read") == "OK 3"
    assert path.read_bytes() == before


def test_a_read_only_directory_is_refused_for_writing_with_the_fix_and_read_as_it_is(user_dir: Path) -> None:
    path = make_store(user_dir / "exp" / STORE_FILE)
    give_to_user(path.parent, path)
    os.chmod(path.parent, 0o555)
    out = open_as_user(path, "write")
    assert out.startswith(f"StoreError: {path}'s directory is read-only (permissions r-xr-xr-x; SQLite creates")
    assert f"make it writable (chmod u+w {path.parent}) to run or resume" in out
    assert open_as_user(path, "read") == "OK 3"  # no -shm can be created: read as one immutable file


def test_a_store_on_a_read_only_file_system_even_for_root(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a read-only file system")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    path = make_store(tmp_path / "exp" / STORE_FILE)
    directory = path.parent
    outputs = []
    for how in ("write", "read"):
        script = (
            f'mount --bind "{directory}" "{directory}" && mount -o remount,bind,ro "{directory}" && '
            f'exec "{sys.executable}" -c "$0" "{path}" {how}'
        )
        out = subprocess.run(
            ["unshare", "-m", "sh", "-c", script, OPEN_AS_ANOTHER_USER.replace("os.geteuid() == 0", "False")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout.strip())
    assert outputs[0] == (
        f"StoreError: {path} is on a read-only file system: remount it read-write, or copy the experiment's "
        "directory to a writable place, to run or resume; reading it (archsmith show / Experiment.trials) works as it is"
    )
    assert outputs[1] == "OK 3"


def test_creating_a_store_in_a_read_only_directory_names_it(user_dir: Path) -> None:
    directory = user_dir / "exp"
    directory.mkdir()
    give_to_user(directory)
    os.chmod(directory, 0o555)
    out = open_as_user(directory / STORE_FILE, "create")
    assert out.startswith(f"StoreError: {directory / STORE_FILE}'s directory is read-only (permissions r-xr-xr-x")
    assert f"make it writable (chmod u+w {directory})" in out
    assert os.listdir(directory) == []


# Corrupted files -------------------------------------------------------------------------
def corrupt(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(random.Random(0).randbytes(50_000))
    elif how == "text":
        path.write_text("experiment notes, not a database\n" * 100)
    else:
        make_store(path, trials=3000)
        size = path.stat().st_size
        assert size > 100_000 and not Path(f"{path}-wal").exists()
        with open(path, "r+b") as f:
            if how == "truncated":
                f.truncate(size // 2)
            else:  # "overwritten": pages in its middle
                f.seek(size // 3)
                f.write(random.Random(1).randbytes(size // 3))


@pytest.mark.parametrize("readonly", [True, False], ids=["read", "write"])
@pytest.mark.parametrize("how", ["garbage", "text", "truncated", "overwritten"])
def test_a_corrupted_file_is_named_with_what_to_do(tmp_path: Path, how: str, readonly: bool) -> None:
    path = tmp_path / STORE_FILE
    corrupt(path, how)
    before = path.read_bytes()
    if readonly and how == "overwritten":
        # Its first pages are fine: it opens as a store, and SQLite's own error comes from
        # the damaged pages (the CLI's exit 1, docs/cli.md); writing it is refused at once.
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            read_all(path, readonly)
        assert path.read_bytes() == before
        return
    with pytest.raises(StoreError) as caught:
        read_all(path, readonly)
    assert str(caught.value).startswith(f"{path} is not a readable SQLite database (corrupted?)")
    assert f"restore it from a copy, or try `sqlite3 {path} .recover`" in str(caught.value)
    assert path.read_bytes() == before  # nothing written into it


# Atomic creation ---------------------------------------------------------------------------
def test_create_writes_schema_meta_and_a_store_id_at_once(tmp_path: Path) -> None:
    path = tmp_path / "exp" / STORE_FILE
    store = Store.create(path, META)
    try:
        assert {k: store.get_meta(k) for k in META} == META
        assert len(store.store_id or "") == 32 and store.get_meta("store_id") == store.store_id
        assert store.get_meta("schema_version") == 1 and store.trials() == []
    finally:
        store.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [STORE_FILE]
    other = Store.create(tmp_path / "other" / STORE_FILE, META)
    assert other.store_id != store.store_id
    other.close()


def test_create_refuses_an_existing_store_and_leaves_it_alone(tmp_path: Path) -> None:
    path = make_store(tmp_path / STORE_FILE)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=f"{path} already exists: resume it"):
        Store.create(path, {"seed": 99})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [STORE_FILE]


def test_create_killed_at_random_moments_leaves_no_store_or_a_complete_one(tmp_path: Path) -> None:
    rng = random.Random(0)
    meta_keys = {f"key{i}" for i in range(200)}
    interrupted = 0
    for attempt in range(6):
        root = tmp_path / str(attempt)
        loop = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "store_create_loop.py"), str(root)], stdout=subprocess.PIPE, text=True
        )
        assert loop.stdout is not None and loop.stdout.readline() == "READY\n"
        time.sleep(rng.uniform(0.02, 0.3))
        loop.send_signal(signal.SIGKILL)
        loop.wait()
        for directory in sorted(root.iterdir(), key=lambda p: int(p.name)) if root.exists() else []:
            path = directory / STORE_FILE
            if not path.exists():
                interrupted += 1
                store = Store.create(path, {"after": "a kill"})  # the directory is usable at once
                assert store.get_meta("after") == "a kill"
                store.close()
                assert sorted(p.name for p in directory.iterdir()) == [STORE_FILE]  # the killed one's temps are gone
                continue
            store = Store(path, readonly=True)
            try:
                keys = {r[0] for r in store.conn.execute("SELECT key FROM meta")}
                assert keys == meta_keys | {"schema_version", "store_id"}, directory
                assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                store.close()
    assert interrupted >= 1  # some kill landed inside a creation


def test_create_removes_only_the_temporary_files_of_dead_creations(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".{STORE_FILE}.creating-{dead.stdout.strip()}-0123abcd"
    live = tmp_path / f".{STORE_FILE}.creating-{os.getppid()}-4567cdef"  # a live process: still creating
    for p in (stale, Path(f"{stale}-wal"), live):
        p.write_bytes(b"half a store")
    Store.create(tmp_path / STORE_FILE, META).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([STORE_FILE, live.name])


# The file deleted or replaced under an open store ----------------------------------------
def test_a_deleted_store_is_detected_and_rescued_with_every_row(tmp_path: Path) -> None:
    path = make_store(tmp_path / "exp" / STORE_FILE)
    store = Store(path)
    try:
        assert store.check_identity() is None
        shutil.rmtree(path.parent)  # `rm -rf` of the experiment's directory, mid-run
        assert store.check_identity() == f"{path} was deleted while the run was writing it"
        with store.transaction():  # the run goes on writing into the deleted file
            trial_id = store.add_trial({"width": 7})
            store.finish_trial(trial_id, "failed", error="boom", output="last lines", at=time.time())
        rescued = store.rescue(tmp_path / "rescued" / STORE_FILE)
    finally:
        store.close()
    assert rescued == tmp_path / "rescued" / STORE_FILE and sorted(os.listdir(rescued.parent)) == [STORE_FILE]
    copy = Store(rescued, readonly=True)
    try:
        trials = copy.trials()
        assert [t.sample["width"] for t in trials] == [0, 1, 2, 7]
        assert trials[-1].output == "last lines" and trials[0].arch_key == "w0"
        assert copy.get_meta("seed") == 3 and copy.store_id == copy.get_meta("store_id")
        assert copy.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        copy.close()
    with pytest.raises(StoreError, match="it exists; choose a new path"):
        Store(rescued).rescue(rescued)


def test_a_replaced_store_is_detected_and_left_as_it_came(tmp_path: Path) -> None:
    path = make_store(tmp_path / STORE_FILE, trials=2)
    other = make_store(tmp_path / "other.db", trials=5)
    store = Store(path)
    try:
        store.add_trial({"width": 10})
        shutil.copy(other, tmp_path / "incoming.db")
        os.replace(tmp_path / "incoming.db", path)  # e.g. a restore from a backup, mid-run
        store.add_trial({"width": 11})  # before the run notices: into its own WAL, under the old name
        assert store.check_identity() == f"{path} was replaced by another file while the run was writing it"
        store.add_trial({"width": 12})
        assert read_all(path, readonly=True) == 5  # the replacement reads as it came, none of our frames
        rescued = store.rescue(tmp_path / "rescued.db")
    finally:
        store.close()
    assert read_all(path, readonly=True) == 5
    assert read_all(rescued, readonly=True) == 5  # 2 + 3 of ours
    copy = Store(rescued, readonly=True)
    assert [t.sample["width"] for t in copy.trials()] == [0, 1, 10, 11, 12]
    copy.close()


def test_a_store_created_where_one_was_deleted_mid_run_starts_empty(tmp_path: Path) -> None:
    path = make_store(tmp_path / STORE_FILE, trials=2)
    store = Store(path)
    try:
        path.unlink()  # only the file: its WAL stays, still written by the run
        store.add_trial({"width": 10})
        fresh = Store.create(path, {"seed": 5})  # would replay the old WAL if it were left there
        assert fresh.trials() == [] and fresh.get_meta("seed") == 5
        fresh.add_trial({"width": 20})
        assert store.check_identity() == f"{path} was replaced by another file while the run was writing it"
        store.add_trial({"width": 11})
        assert [t.sample for t in fresh.trials()] == [{"width": 20}]
        fresh.close()
    finally:
        store.close()
    assert read_all(path, readonly=True) == 1
