"""``archsmith dashboard [DIR] [--host 127.0.0.1] [--port 8080]``: serve the web dashboard
over the experiments under DIR (read-only, live while a run is going). Parses the
arguments and starts the server; the app is ``archsmith.dashboard.create_app``."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import sys
from pathlib import Path

from archsmith.experiment import DEFAULT_ROOT

from ._common import CommandError

HELP = "serve a web dashboard over the experiments under DIR (read-only, live); binds 127.0.0.1 unless --host"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: Host names a browser on this machine sends for a dashboard bound to IPv4 loopback;
#: any other ``Host`` header is refused (a page elsewhere reaching it through DNS rebinding).
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535; 0 picks a free one)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535; 0 picks a free one)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        help="an experiment, or a directory of them (default ./archsmith-experiments)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="the address to listen on (default 127.0.0.1: this machine only; another address warns)",
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="the port (default 8080; 0 picks a free one)")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning printed when the dashboard listens beyond this machine, else None."""
    if is_loopback(host):
        return None
    return (
        f"archsmith: warning: the dashboard listens on {host}:{port}, beyond this machine: anyone who can reach "
        "it can read these experiments (their samples, metrics, logs and errors; there is no login). "
        "To look from elsewhere, keep the default --host 127.0.0.1 and use an SSH tunnel "
        f"(ssh -L {port}:127.0.0.1:{port} this-machine)."
    )


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound before the server starts, so that a busy port or an unknown host is
    one clear error, and ``--port 0`` knows its port before printing the address."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise CommandError(
            f"--host {host!r} is not an address of this machine ({e.strerror}); use 127.0.0.1", 2
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise CommandError(
                f"port {port} on {host} is in use; choose another with --port (0 picks a free one)", 2
            ) from None
        raise CommandError(
            f"cannot listen on {host}:{port} ({e.strerror}); choose another --host or --port", 2
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _directory(args: argparse.Namespace) -> Path:
    directory = Path(args.directory if args.directory is not None else DEFAULT_ROOT)
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise CommandError(
            f"{directory} {what} (looked in {directory.absolute()}); pass an experiment or the directory that holds "
            "them: archsmith dashboard DIR",
            2,
        )
    return directory


def run(args: argparse.Namespace) -> int:
    directory = _directory(args)
    try:
        import uvicorn

        from archsmith.dashboard import create_app
    except ImportError as e:
        raise CommandError(
            f"the dashboard needs {e.name or 'its dependencies'}: pip install 'archsmith[dashboard]'", 2
        ) from None
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr)
    app = create_app(directory, allowed_hosts=[*LOOPBACK_NAMES, args.host] if args.host in LOOPBACK_NAMES else None)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"archsmith dashboard: {directory.absolute()} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
