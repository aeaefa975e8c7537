"""The documents say what the code does: options and their defaults, environment, paths.

* Every option ``twistd mitelacd --help`` lists is in docs/options.md, with
  the default the help shows (rendered as ``twistd.python.usage`` renders
  it), and nothing else is; the README's options agree with the help too.
  The same for ``twistd mitelacd-sim`` and docs/simulator.md.
* Every ``MITELACD_*`` variable the ``.tac`` file reads (through
  ``options_from_environment``, and ``$MITELACD_TOKEN`` as the options read
  it) is in docs/options.md, in the row of its option, and in the ``.tac``
  file's docstring.
* Every module path the documents name exists, and docs/development.md maps
  every module of the package.
"""

from __future__ import annotations

import ast
import datetime
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.python import usage

from mitelacd import tap
from mitelacd.sim import service as sim

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
#: A table row that documents an option: | `--name VALUE` | default | ...
ROW = re.compile(r"^\|\s*`--([a-z][a-z-]*)[^`]*`\s*\|")


def help_defaults(options: usage.Options) -> dict[str, str | None]:
    """Each option of ``--help``: the default it shows (``None``: it shows none).

    ``getUsage`` lists ``longOpt`` (``name=`` for an option with a value) and
    appends ``[default: X]``, ``X`` as ``str(default)``, to an option with a
    value whose default is not ``None``.
    """
    shown: dict[str, str | None] = {}
    for long in options.longOpt:
        name = long.rstrip("=")
        default = options.defaults.get(name)
        shown[name] = str(default) if long.endswith("=") and default is not None else None
    return shown


def help_text(options: usage.Options) -> str:
    return options.getUsage(width=1000)


def rows(path: Path) -> dict[str, list[str]]:
    """The options a document's tables list: name → the row's cells."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        match = ROW.match(line)
        if match:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            assert match.group(1) not in found, f"{path.name}: --{match.group(1)} twice"
            found[match.group(1)] = cells
    return found


@pytest.mark.parametrize(
    ("options", "document"),
    [(tap.Options, "docs/options.md"), (sim.Options, "docs/simulator.md")],
    ids=["mitelacd", "mitelacd-sim"],
)
def test_every_option_is_documented_with_the_default_of_its_help(
    options: type[usage.Options], document: str
) -> None:
    shown = help_defaults(options())
    text = help_text(options())
    documented = rows(ROOT / document)
    assert set(documented) == set(shown), f"{document} and --help list different options"
    flags = {flag[0] for flag in getattr(options, "optFlags", [])}
    for name, default in shown.items():
        assert f"--{name}" in text
        cell = documented[name][1]
        if default is not None:
            assert f"[default: {default}]" in text
            assert cell == f"`{default}`", f"{document}: --{name} defaults to `{default}`"
        elif name in flags:
            assert cell == "off", f"{document}: the flag --{name} is off unless given"
        elif name not in ("help", "version"):
            assert not cell.startswith("`"), f"{document}: --{name} shows no default in --help"


def test_the_readme_options_agree_with_the_help() -> None:
    shown = help_defaults(tap.Options())
    documented = rows(ROOT / "README.md")
    assert documented, "the README shows the usual options"
    for name, cells in documented.items():
        assert name in shown, f"README: --{name} is not an option"
        if shown[name] is not None:
            assert cells[1] == f"`{shown[name]}`", f"README: --{name} defaults to `{shown[name]}`"


def test_the_day_starts_default_is_shown_as_it_is_given(tmp_path: Path) -> None:
    """``--day-starts`` takes ``HH:MM``: the help shows its default so, and it is still a time."""
    assert help_defaults(tap.Options())["day-starts"] == "00:00"
    options = tap.Options()
    options.parseOptions(["--simulate", "--file", str(tmp_path / "mitel_data.json")])
    assert options["day-starts"] == tap.day_starts("00:00") == datetime.time(0, 0)


class Reads(dict[str, str]):
    """An environment that notes every variable asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def variables_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The ``MITELACD_*`` variables the ``.tac`` file's options read."""
    environ = Reads(
        {k: v for k, v in os.environ.items() if not k.startswith("MITELACD_")},
        MITELACD_SIMULATE="1",
        MITELACD_FILE=str(tmp_path / "mitel_data.json"),
        MITELACD_HISTORY="none",
    )
    # Options read $MITELACD_TOKEN from the process's environment.
    monkeypatch.setattr(os, "environ", environ)
    tap.options_from_environment(environ)
    asked = {name for name in environ.asked if name.startswith("MITELACD_")}
    # And whatever the code names, in case a variable is read only in some cases.
    source = (ROOT / "mitelacd" / "tap.py").read_text() + (ROOT / "mitelacd.tac").read_text()
    named = set(re.findall(r"\bMITELACD_[A-Z0-9_]*[A-Z0-9]\b", source))
    return asked | named | set(tap.ENVIRONMENT)


def tac_docstring() -> str:
    docstring = ast.get_docstring(ast.parse((ROOT / "mitelacd.tac").read_text()))
    assert docstring is not None
    return docstring


def test_every_environment_variable_is_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = variables_read(tmp_path, monkeypatch)
    assert {"MITELACD_HOST", "MITELACD_SIMULATE", "MITELACD_TOKEN"} <= variables
    documented = rows(DOCS / "options.md")
    options_md = (DOCS / "options.md").read_text()
    docstring = tac_docstring()
    for name in sorted(variables):
        assert re.search(rf"\b{name}\b", options_md), f"docs/options.md: {name}"
        assert re.search(rf"\b{name}\b", docstring), f"mitelacd.tac's docstring: {name}"
        # In the row of the option it stands for (MITELACD_DAY_STARTS: --day-starts).
        option = name.removeprefix("MITELACD_").lower().replace("_", "-")
        assert option in documented, f"{name}: no option --{option}"
        assert re.search(rf"\b{name}\b", documented[option][2]), f"docs/options.md: --{option}"
    for name, option in tap.ENVIRONMENT.items():
        assert option == "--" + name.removeprefix("MITELACD_").lower().replace("_", "-")


def module_paths(text: str) -> Iterator[str]:
    yield from re.findall(r"\bmitelacd/[A-Za-z0-9_/]+\.py\b", text)
    # Dotted module names, not file names (/etc/prometheus/mitelacd.token).
    for dotted in re.findall(r"(?<![\w/.-])mitelacd(?:\.[a-z_0-9]+)+", text):
        if not dotted.endswith((".py", ".tac", ".service", ".socket")):
            yield dotted


def exists(path: str) -> bool:
    if path.endswith(".py"):
        return (ROOT / path).is_file()
    parts = path.split(".")
    # mitelacd.logs.journal: a module, or a name in one.
    for end in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:end])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


DOCUMENTS = sorted([ROOT / "README.md", *DOCS.glob("*.md")])


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_module_paths_in_documents_exist(document: Path) -> None:
    missing = sorted({p for p in module_paths(document.read_text()) if not exists(p)})
    assert not missing, f"{document.name} names modules that are not there: {missing}"


def test_the_module_map_has_every_module() -> None:
    text = (DOCS / "development.md").read_text()
    modules = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "mitelacd").rglob("*.py") if p.is_file()
    )
    assert modules
    missing = [m for m in modules if m not in text]
    assert not missing, f"docs/development.md does not map {missing}"


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150
