"""Real processes on loopback: ``twistd`` children whose log lines are waited for, a PBX socket.

* :class:`Twistd`: a ``twistd -n`` child (its log read, systemd's sockets, an open file limit).
* :class:`CheckoutTwistd`: a ``Twistd`` running the mitelacd these tests import.
* :func:`injected_site`: a ``sitecustomize.py`` folder, to fault a child before it imports.
* :func:`fake_pbx`: a listening loopback socket to play the PBX on.
"""

from __future__ import annotations

import fcntl
import os
import queue
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: The folder mitelacd is imported from (the checkout, under pytest), for a child's PYTHONPATH.
CHECKOUT = Path(__file__).resolve().parents[2]

#: The twistd of the running Python environment, as a user would run it.
TWISTD = str(Path(sys.executable).parent / "twistd")


#: Run ``argv[2:]`` with the descriptors listed in ``argv[1]`` moved to 3, 4, ...
_AS_SYSTEMD = """
import os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
for i, fd in enumerate(fds):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


class Twistd:
    """A ``twistd -n`` child whose log lines can be waited for.

    ``listen_fds`` are handed over as systemd hands a socket unit's sockets
    (``LISTEN_FDS``, ``LISTEN_PID``, descriptors from 3), for ``--http systemd:...``;
    ``open_files`` is the child's open file limit (soft and hard), when given.
    """

    def __init__(
        self,
        *argv: str,
        cwd: Path,
        pythonpath: Path | None = None,
        stdout: Any = subprocess.PIPE,
        env: Mapping[str, str] | None = None,
        listen_fds: Sequence[socket.socket] = (),
        open_files: int | None = None,
    ) -> None:
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if pythonpath is not None:
            environ["PYTHONPATH"] = str(pythonpath)
        command = [TWISTD, "-n", "--pidfile=", *argv]
        passed: list[int] = []
        if listen_fds:
            # As systemd passes sockets: from descriptor 3 on, with LISTEN_PID
            # the daemon's own (the launcher's, kept by exec).
            passed = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in listen_fds]
            command = [sys.executable, "-c", _AS_SYSTEMD, ",".join(map(str, passed)), *command]
            environ["LISTEN_FDS"] = str(len(passed))
            environ["LISTEN_FDNAMES"] = ":".join(["mitelacd.socket"] * len(passed))
        try:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=environ,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                text=True,
                pass_fds=passed,
                preexec_fn=None if open_files is None else _limit_open_files(open_files),
            )
        finally:
            for fd in passed:
                os.close(fd)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        if self.process.stdout is not None:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.seen)}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"twistd exited ({self.process.returncode}) before {pattern!r}:\n"
                        + "".join(self.seen)
                    ) from None
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def http_port(self, timeout: float = 60.0) -> int:
        """The port of the web service, from its start-up line."""
        return int(self.wait_for(r"wall board and API at https?://[^:]+:(\d+)/", timeout).group(1))

    def stop_cleanly(self) -> None:
        """SIGTERM, then an orderly shutdown (twistd exits by the same signal)."""
        assert self.stop() in (0, -signal.SIGTERM)
        self.wait_for(r"Server Shut Down", timeout=5)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class CheckoutTwistd(Twistd):
    """A ``twistd -n`` child running the mitelacd these tests import (the checkout under pytest)."""

    def __init__(self, *argv: str, cwd: Path, **kwargs: Any) -> None:
        super().__init__(*argv, cwd=cwd, pythonpath=CHECKOUT, **kwargs)


def _limit_open_files(limit: int) -> Callable[[], None]:
    """What a child runs before ``exec``: its open file limit set to ``limit``."""

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return preexec


def injected_site(folder: Path, source: str) -> Path:
    """A folder with a ``sitecustomize.py`` of ``source``, to put first on a child's PYTHONPATH.

    Faults (a module that is not installed, a folder that cannot be written)
    are injected into a real process this way, before anything is imported.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(source)
    return folder


def fake_pbx(timeout: float = 60.0) -> tuple[socket.socket, int]:
    """A listening loopback socket to play the PBX on, and its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(timeout)
    return server, server.getsockname()[1]
