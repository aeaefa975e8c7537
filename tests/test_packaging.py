"""The wheel a user installs carries the twistd dropins, and nothing of Twisted's own."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import mitelacd

ROOT = Path(__file__).parent.parent


def test_wheel_holds_the_dropins_but_no_twisted_init(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("mitelacd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/plugins/mitelacd_plugin.py" in names
    assert "twisted/plugins/mitelacd_sim_plugin.py" in names
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names
    assert not [n for n in names if "dropin.cache" in n]
    # Every module of every package, and the board's files, travel with it.
    shipped = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "mitelacd").rglob("*")
        if p.suffix in (".py", ".html", ".css", ".js", ".wav") and "__pycache__" not in p.parts
    }
    assert {
        "mitelacd/floor/records.py",
        "mitelacd/web/board/board.js",
        "mitelacd/web/board/alarm.wav",
    } <= shipped
    assert shipped <= names, sorted(shipped - names)
    # The licence travels with the wheel, and the version is mitelacd.__version__.
    wheel_file = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    (licence,) = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
    assert wheel_file.read(licence) == (ROOT / "LICENSE").read_bytes()
    headers = wheel_file.read(metadata).decode("utf-8").split("\n\n", 1)[0].splitlines()
    assert "Version: 0.2.0" in headers and mitelacd.__version__ == "0.2.0"
    assert "License-File: LICENSE" in headers
    assert "Provides-Extra: tls" in headers
