"""A throwaway PostgreSQL server, for the tests and the benchmark of the history database.

Debian's ``postgresql`` package is used as it is installed: its programs are
found under ``/usr/lib/postgresql/*/bin`` (the newest version), else in
``pg_config --bindir``. :class:`PostgresServer` makes a cluster in a fresh
temporary folder, listens on 127.0.0.1 on a port the system picked and on a
socket in that folder, and deletes everything when closed. It can be stopped
and started again (the same port, the same data), so that a test can take
the database away in the middle of a day.

PostgreSQL refuses to run as root: when this process is root, the folder is
given to the unprivileged user ``nobody`` and every PostgreSQL program is run
as that user (through ``setpriv``). Durability is traded for speed
(``fsync=off``): the data is thrown away anyway.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence

#: How long a start or a stop of the server may take, in seconds.
TIMEOUT = 60

#: What to do about a machine without PostgreSQL.
INSTALL_HINT = "apt-get install postgresql"


class PostgresMissing(Exception):
    """PostgreSQL's server programs are not installed here."""


class PostgresFailed(Exception):
    """A PostgreSQL program failed; the message has its output and the server's log."""


def _version_key(folder: str) -> tuple[int, ...]:
    found = re.search(r"/postgresql/([0-9.]+)/bin$", folder)
    if found is None:
        return (0,)
    return tuple(int(part) for part in found.group(1).split(".") if part)


def find_bindir() -> str:
    """The folder of ``initdb`` and ``pg_ctl``; PostgresMissing naming the package when none."""
    candidates = sorted(
        (os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=_version_key,
    )
    if candidates:
        return candidates[-1]
    try:
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=TIMEOUT, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if out and os.access(os.path.join(out, "initdb"), os.X_OK):
        return out
    raise PostgresMissing(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found under"
        f" /usr/lib/postgresql/*/bin nor in pg_config --bindir: {INSTALL_HINT}"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on just now: the system picks it, and it is let go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, for as long as it is open.

    ``start()`` makes the cluster the first time and starts the server;
    ``stop()`` stops it (the data stays); ``close()`` stops it and deletes
    the folder. ``url(database)`` is the SQLAlchemy URL of a database that
    :meth:`create_database` made.
    """

    def __init__(self, user: str = "nobody", bindir: str | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.folder = tempfile.mkdtemp(prefix="mitelacd-pg-")
        self.data = os.path.join(self.folder, "data")
        self.sockets = os.path.join(self.folder, "run")
        self.logfile = os.path.join(self.folder, "server.log")
        self.port = free_port()
        self.running = False
        self._prefix: list[str] = []
        # A program that ends without closing (an exception, a test run
        # interrupted) must not leave a server behind.
        atexit.register(self.close)
        os.mkdir(self.sockets)
        if os.geteuid() == 0:
            account = pwd.getpwnam(user)
            for path in (self.folder, self.sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
            self._prefix = [
                "setpriv",
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--clear-groups",
                "--",
            ]

    def _run(self, program: str, *args: str) -> str:
        command = [*self._prefix, os.path.join(self.bindir, program), *args]
        try:
            done = subprocess.run(
                command,
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            )
        except subprocess.TimeoutExpired as e:
            raise PostgresFailed(f"{program} took over {TIMEOUT} s{self._log_tail()}") from e
        if done.returncode != 0:
            raise PostgresFailed(
                f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
                + self._log_tail()
            )
        return done.stdout

    def _log_tail(self) -> str:
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()[-20:]
        except OSError:
            return ""
        return "\nserver log:\n" + "".join(lines)

    def start(self) -> None:
        """Start the server (making the cluster first if there is none); waits until it answers."""
        if self.running:
            return
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._run(
                "initdb",
                "--pgdata",
                self.data,
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            )
        options = " ".join(
            (
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.sockets}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c timezone=UTC",
            )
        )
        self._run(
            "pg_ctl", "--pgdata", self.data, "--log", self.logfile, "--wait",
            f"--timeout={TIMEOUT}", "--options", options, "start",
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clients are disconnected; ``immediate``: as if it crashed)."""
        if not self.running:
            return
        self._run(
            "pg_ctl", "--pgdata", self.data, "--wait", f"--timeout={TIMEOUT}",
            "--mode", mode, "stop",
        )  # fmt: skip
        self.running = False

    def close(self) -> None:
        """Stop the server and delete its folder (again: nothing)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            atexit.unregister(self.close)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server, as ``--history`` takes it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statements: Sequence[str], database: str = "postgres") -> None:
        """Run statements outside a transaction (CREATE DATABASE cannot be in one)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as connection:
            for statement in statements:
                connection.execute(statement.encode("utf-8"))

    def create_database(self, name: str) -> str:
        """Make an empty database; its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.sql([f"CREATE DATABASE {name}"])
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.sql([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
