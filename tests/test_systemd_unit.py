"""The shipped systemd units: valid to ``systemd-analyze verify``, and well confined.

``systemd-analyze`` comes with Debian's ``systemd`` package (``.ci/run``
installs it); without it these tests fail rather than skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mitelacd.testing import TWISTD, Twistd

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
SERVICE = CONTRIB / "mitelacd.service"
SOCKET = CONTRIB / "mitelacd.socket"
#: Where the unit expects the virtual environment's twistd.
INSTALLED_TWISTD = "/opt/mitelacd/bin/twistd"
#: The highest exposure ``systemd-analyze security`` may give the service ("OK").
MAX_EXPOSURE = 3.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), *argv], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units, with twistd where this test run has it (the one thing changed)."""
    for unit in (SERVICE, SOCKET):
        text = unit.read_text().replace(INSTALLED_TWISTD, TWISTD)
        (tmp_path / unit.name).write_text(text)
    return tmp_path


def test_verify_is_clean(units: Path) -> None:
    result = run("verify", "--man=no", str(units / SERVICE.name), str(units / SOCKET.name))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_verify_complains_of_a_missing_twistd(tmp_path: Path) -> None:
    """What verify says of the unit where twistd is not installed: that, and nothing else."""
    missing = tmp_path / "venv" / "bin" / "twistd"
    unit = tmp_path / SERVICE.name
    unit.write_text(SERVICE.read_text().replace(INSTALLED_TWISTD, str(missing)))
    result = run("verify", "--man=no", str(unit))
    complaints = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert complaints == [
        f"mitelacd.service: Command {missing} is not executable: No such file or directory"
    ]


def exposure() -> float:
    result = run("security", "--offline=yes", "--no-pager", str(SERVICE))
    assert result.returncode == 0, result.stderr
    match = re.search(
        r"Overall exposure level for mitelacd\.service: (\d+\.\d+) (\w+)", result.stdout
    )
    assert match is not None, result.stdout
    print(f"\nsystemd-analyze security: {match.group(1)} {match.group(2)}")
    return float(match.group(1))


def test_security_exposure_is_ok() -> None:
    score = exposure()
    assert score <= MAX_EXPOSURE
    # The README and the unit's own comment say the score this test measures.
    readme = (ROOT / "README.md").read_text()
    assert f"rates it {score:.1f} OK" in readme
    assert f"rates this {score:.1f} OK" in SERVICE.read_text()


def directives(unit: Path) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit, continued lines joined."""
    text = re.sub(r"\\\n\s*", " ", unit.read_text())
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_service_speaks_sd_notify() -> None:
    unit = directives(SERVICE)
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["UMask"] == ["0022"]  # boards read the file
    exec_start = unit["ExecStart"][0].split()
    assert exec_start[:5] == [
        INSTALLED_TWISTD,
        "--nodaemon",
        "--pidfile=",
        "--logger",
        "mitelacd.logs.journal",
    ]
    assert "mitelacd" in exec_start


def test_a_usage_error_is_not_restarted(tmp_path: Path) -> None:
    """The status a bad option exits with is the one the unit does not restart on."""
    (prevent,) = directives(SERVICE)["RestartPreventExitStatus"]
    daemon = Twistd("mitelacd", "--simulate", "--http", "tcp:99999", cwd=tmp_path, pythonpath=ROOT)
    try:
        assert daemon.process.wait(timeout=60) == int(prevent) == 64
    finally:
        daemon.stop()


def test_the_socket_unit_matches_the_documented_endpoint() -> None:
    socket_unit = directives(SOCKET)
    assert socket_unit["ListenStream"] == ["0.0.0.0:8080"]  # an AF_INET socket
    assert "--http systemd:domain=INET:index=0" in SOCKET.read_text()
    assert "--http systemd:domain=INET:index=0" in SERVICE.read_text()
    assert "--http systemd:domain=INET:index=0" in (ROOT / "README.md").read_text()


def test_the_open_file_limit_leaves_room_for_every_event_stream_client() -> None:
    """``LimitNOFILE=`` sets the soft and hard limits: the full cap fits with room to spare."""
    from mitelacd.openfiles import RESERVE
    from mitelacd.web.resources import WebSettings

    (limit,) = directives(SERVICE)["LimitNOFILE"]
    assert int(limit) - RESERVE >= WebSettings().max_push_clients
