"""No plugin cache warning at start in an environment the daemon cannot write to.

An installed environment is stood in for by a folder of its own holding the
two dropins, as pip puts them, under names of their own: where mitelacd is
installed for real, Twisted's plugins folder already holds dropins of the
same module names, which would hide these from the scan. Writes to that folder fail with EACCES in the
child processes, injected by a ``sitecustomize`` (we run as root, who may
write anywhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mitelacd.testing import Twistd, injected_site

ROOT = Path(__file__).parent.parent
WARNING = "Unable to write to plugin cache"
DROPINS = ("mitelacd_plugin.py", "mitelacd_sim_plugin.py")

READ_ONLY = """
import builtins, errno, os

FOLDER = {folder!r}


def _inside(path):
    try:
        return os.path.abspath(os.fsdecode(path)).startswith(FOLDER + os.sep)
    except TypeError:
        return False


def _refuse(path):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))


_open, _os_open, _rename, _replace = builtins.open, os.open, os.rename, os.replace


def _guarded_open(file, mode="r", *args, **kwargs):
    if not isinstance(file, int) and _inside(file) and set(mode) & set("wax+"):
        _refuse(file)
    return _open(file, mode, *args, **kwargs)


def _guarded_os_open(path, flags, *args, **kwargs):
    if _inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        _refuse(path)
    return _os_open(path, flags, *args, **kwargs)


def _guarded_rename(src, dst, *args, **kwargs):
    if _inside(dst):
        _refuse(dst)
    return _rename(src, dst, *args, **kwargs)


def _guarded_replace(src, dst, *args, **kwargs):
    if _inside(dst):
        _refuse(dst)
    return _replace(src, dst, *args, **kwargs)


builtins.open = _guarded_open
os.open = _guarded_os_open
os.rename = _guarded_rename
os.replace = _guarded_replace
"""


class Install:
    """A folder with the dropins as pip installs them, and a way to make it read-only."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.site = tmp_path / "site"
        self.plugins = self.site / "twisted" / "plugins"
        self.plugins.mkdir(parents=True)
        for dropin in DROPINS:
            shutil.copy(ROOT / "twisted" / "plugins" / dropin, self.plugins / f"installed_{dropin}")
        self.read_only = injected_site(
            tmp_path / "read-only", READ_ONLY.format(folder=str(self.plugins))
        )
        self.cache = self.plugins / "dropin.cache"

    def pythonpath(self, read_only: bool) -> str:
        folders = [self.read_only, self.site] if read_only else [self.site]
        return os.pathsep.join(str(f) for f in folders)

    def start(self) -> list[str]:
        """Start the daemon as its unit does (the folder read-only); its lines up to listening."""
        twistd = Twistd(
            "mitelacd",
            "--simulate",
            "--file",
            str(self.tmp_path / "mitel_data.json"),
            "--http",
            "tcp:0:interface=127.0.0.1",
            cwd=self.tmp_path,
            env={"PYTHONPATH": self.pythonpath(read_only=True)},
        )
        try:
            twistd.http_port()
        finally:
            twistd.stop()
        return twistd.seen

    def refresh(self, read_only: bool = False) -> subprocess.CompletedProcess[str]:
        """``python -m mitelacd.plugincache``, as the install step or the unit runs it."""
        return subprocess.run(
            [sys.executable, "-m", "mitelacd.plugincache"],
            cwd=self.tmp_path,
            env={**os.environ, "PYTHONPATH": self.pythonpath(read_only)},
            capture_output=True,
            text=True,
            timeout=60,
        )


def test_without_a_fresh_cache_a_read_only_install_warns_at_every_start(tmp_path: Path) -> None:
    install = Install(tmp_path)
    for _ in range(2):
        lines = install.start()
        warnings = [line for line in lines if WARNING in line]
        assert len(warnings) == 1, "".join(lines)
        assert f"{install.cache}: error number 13" in warnings[0]
    assert not install.cache.exists()


def test_the_cache_written_after_install_keeps_every_start_quiet(tmp_path: Path) -> None:
    install = Install(tmp_path)
    done = install.refresh()
    assert done.returncode == 0, done.stderr
    assert f"written: {install.cache}" in done.stdout.splitlines()
    assert install.cache.exists()
    stamp = install.cache.stat().st_mtime_ns
    for _ in range(2):
        lines = install.start()
        assert not [line for line in lines if WARNING in line], "".join(lines)
        assert any("wall board and API at" in line for line in lines)
    # Run again (as the unit does before each start), it writes nothing.
    again = install.refresh()
    assert again.returncode == 0 and f"up to date: {install.cache}" in again.stdout.splitlines()
    assert install.cache.stat().st_mtime_ns == stamp


def test_an_upgraded_dropin_makes_the_cache_stale_until_refreshed(tmp_path: Path) -> None:
    install = Install(tmp_path)
    assert install.refresh().returncode == 0
    # pip replaces the dropin after the cache was written: the cache is older.
    earlier = (install.plugins / "installed_mitelacd_plugin.py").stat().st_mtime - 10
    os.utime(install.cache, (earlier, earlier))
    assert [line for line in install.start() if WARNING in line]
    assert install.refresh().returncode == 0
    assert not [line for line in install.start() if WARNING in line]


def test_refresh_says_when_it_cannot_write(tmp_path: Path) -> None:
    install = Install(tmp_path)
    done = install.refresh(read_only=True)
    assert done.returncode == 1
    assert (
        f"mitelacd.plugincache: {WARNING} {install.cache}: error number 13"
        in done.stderr.splitlines()
    )
    assert f"up to date: {install.cache}" not in done.stdout
    assert not install.cache.exists()


def test_the_units_step_before_start_writes_the_cache(tmp_path: Path) -> None:
    """``ExecStartPre=+twistd mitelacd --version``: the scan that writes the cache, and the version."""
    install = Install(tmp_path)
    twistd = Twistd(
        "mitelacd", "--version", cwd=tmp_path, env={"PYTHONPATH": install.pythonpath(False)}
    )
    assert twistd.process.wait(timeout=60) == 0
    twistd.wait_for(r"^mitelacd \d+\.\d+\.\d+ \(Twisted ", timeout=10)
    assert install.cache.exists()
    lines = install.start()
    assert not [line for line in lines if WARNING in line], "".join(lines)
