"""``twistd mitelacd``: command-line options and the service tree."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import MultiService, Service
from twisted.internet.interfaces import IConnector
from twisted.python import usage
from twisted.python.filepath import FilePath

from mitelacd import heap, logs, openfiles
from mitelacd.cli import EXIT_USAGE as EXIT_USAGE  # the status of a usage error, for callers
from mitelacd.cli import CommandOptions, usage_exit
from mitelacd.clock import Timeline, install_steady_clock
from mitelacd.disk import FileLock, FileLockedError
from mitelacd.feed.protocol import BackoffClientFactory, PBXClientFactory
from mitelacd.floor.carry import CarriedAgentsExpiry
from mitelacd.floor.dayturn import DayTurn
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.names import NamesError, NamesWatcher, load_names
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger
from mitelacd.persist import LegacyFileWriter, load_legacy
from mitelacd.reports.figures import parse_day_starts
from mitelacd.reports.live import FiguresService
from mitelacd.sdnotify import ReadyWhen, SystemdNotifier, started
from mitelacd.web.endpoint import check_endpoint
from mitelacd.web.figuremetrics import FigureMetrics
from mitelacd.web.message import MessageFile, MessageService
from mitelacd.web.metrics import FloorMetrics
from mitelacd.web.push import DEFAULT_PUSH_INTERVAL
from mitelacd.web.reports import Reports
from mitelacd.web.resources import DEFAULT_HTTP, Served, WebService, WebSettings

if TYPE_CHECKING:
    from mitelacd.feed.capture import CaptureRecorder
    from mitelacd.floor.smdr import SmdrLayout
    from mitelacd.mqtt.publisher import MQTTPublisher
    from mitelacd.reports.smdrlive import SmdrService
    from mitelacd.reports.writer import HistoryService
    from mitelacd.sim.service import FloorScript

log = Logger()

DEFAULT_PORT = 15373


def port_number(value: str) -> int:
    """A TCP port from the command line, 1 to 65535."""
    try:
        port = int(value)
    except ValueError:
        raise usage.UsageError(f"port must be a number, not {value!r}") from None
    if not 1 <= port <= 65535:
        raise usage.UsageError(f"port {port} is out of range (1-65535)")
    return port


#: ``[v6]``, ``[v6]:port`` or ``host:port``.
_HOST_AND_PORT = re.compile(
    r"\[(?P<v6>[^\]]+)\](?::(?P<v6port>[^:]*))?"
    r"|(?P<host>[^:\[\]]+):(?P<port>[^:]*)"
)


def pbx_host(value: str) -> str:
    """``--host``: a host name or an address alone; its port goes in ``--port``.

    An IPv6 address is written bare (``::1``, ``fe80::1%eth0``). A host
    given with a port (``10.1.2.3:15373``, ``[::1]:15373``), in brackets or
    as a URL would be dialled as a name that never resolves: it is refused,
    with the options to give instead.
    """
    text = value.strip()
    if not any(mark in text for mark in ":[]/"):
        return value
    if _is_address(text):
        return value
    if "://" in text:
        url = urllib.parse.urlsplit(text)
        host = url.hostname or ""
        try:
            port = str(url.port) if url.port is not None else ""
        except ValueError:
            port = ""
        if host:
            raise usage.UsageError(
                f"--host takes a host name or address, not a URL: use {_host_options(host, port)}"
            )
    found = _HOST_AND_PORT.fullmatch(text)
    if found is not None:
        host = found["v6"] if found["v6"] is not None else found["host"]
        port = found["v6port"] if found["v6"] is not None else found["port"]
        if port is None:  # [::1]
            raise usage.UsageError(
                f"--host takes an IPv6 address without brackets: use --host {host}"
            )
    else:  # an IPv6 address with a port and no brackets: 2001:db8::7:15373
        host, _, port = text.rpartition(":")
        if not _is_address(host):
            host = ""
    if host and port.isdigit():
        raise usage.UsageError(
            f"--host takes a host name or address, not a port: use {_host_options(host, port)}"
        )
    raise usage.UsageError(f"--host {value!r} is not a host name or address")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _host_options(host: str, port: str) -> str:
    return f"--host {host} --port {port}" if port else f"--host {host}"


#: What ``--smdr`` holds once read: the host (None: ``--host``'s) and port.
SmdrTarget = tuple[str | None, int]


def smdr_target(value: str) -> SmdrTarget | None:
    """``--smdr HOST[:PORT]``, ``same`` (``--host`` on port 1752) or ``none``.

    A bare IPv6 address is a host; with a port it is written in brackets
    (``[fe80::1]:1752``).
    """
    from mitelacd.feed.smdr import DEFAULT_SMDR_PORT

    text = value.strip()
    if text.lower() == "none":
        return None
    if text.lower() == "same":
        return (None, DEFAULT_SMDR_PORT)
    if not text or "/" in text or " " in text:
        raise usage.UsageError(f"--smdr {value!r}: give HOST, HOST:PORT, 'same' or 'none'")
    if _is_address(text):
        return (text, DEFAULT_SMDR_PORT)
    found = _HOST_AND_PORT.fullmatch(text)
    if found is None:
        if ":" in text or "[" in text or "]" in text:
            raise usage.UsageError(
                f"--smdr {value!r} is not HOST[:PORT] (an IPv6 address with a port"
                " goes in brackets: [fe80::1]:1752)"
            )
        return (text, DEFAULT_SMDR_PORT)
    host = found["v6"] if found["v6"] is not None else found["host"]
    port = found["v6port"] if found["v6"] is not None else found["port"]
    if port is None:
        return (host, DEFAULT_SMDR_PORT)
    try:
        return (host, port_number(port))
    except usage.UsageError as e:
        raise usage.UsageError(f"--smdr {value!r}: {e}") from None


def smdr_layout(value: str) -> str:
    """``--smdr-layout``/``--sim-smdr-layout``: a layout name (checked, kept as given)."""
    from mitelacd.floor.smdr import LAYOUT_NAMES, layout_named

    if value.strip().lower() == "auto":
        return "auto"
    try:
        return layout_named(value).name
    except ValueError as e:
        raise usage.UsageError(f"{e}; the layouts are {', '.join(LAYOUT_NAMES)}") from None


def sim_smdr_layout(value: str) -> SmdrLayout:
    """``--sim-smdr-layout``: a layout (its default stays a name, so a given one is told apart)."""
    from mitelacd.floor.smdr import layout_named

    return layout_named(smdr_layout(value))


def positive_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise usage.UsageError(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise usage.UsageError(f"{name} must be more than 0 seconds, not {value}")
    return seconds


def seconds_or_zero(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise usage.UsageError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 <= seconds < float("inf"):
        raise usage.UsageError(f"{name} must be 0 or more seconds, not {value}")
    return seconds


def push_interval(value: str) -> float:
    """``--push-interval``: 0 (every change) or a number of seconds up to 10."""
    try:
        seconds = float(value)
    except ValueError:
        raise usage.UsageError(
            f"--push-interval must be a number of seconds, not {value!r}"
        ) from None
    if not 0 <= seconds <= 10:
        raise usage.UsageError(f"--push-interval must be from 0 to 10 seconds, not {value}")
    return seconds


def log_level(value: str) -> str:
    if value not in logs.LEVEL_NAMES:
        raise usage.UsageError(
            f"--log-level must be one of {', '.join(logs.LEVEL_NAMES)}, not {value!r}"
        )
    return value


def writable_file(value: str) -> FilePath[str]:
    """The data file: its folder must exist and be writable by us."""
    path = FilePath(os.path.abspath(value))
    folder = path.parent()
    if path.isdir():
        raise usage.UsageError(f"--file {value} is a directory, not a file")
    if not folder.isdir():
        raise usage.UsageError(f"--file {value}: folder {folder.path} does not exist")
    if not os.access(folder.path, os.W_OK | os.X_OK):
        raise usage.UsageError(f"--file {value}: cannot write in folder {folder.path}")
    if path.exists() and not os.access(path.path, os.R_OK | os.W_OK):
        raise usage.UsageError(f"--file {value}: file is not readable and writable")
    return path


def writable_folder(value: str) -> str:
    """``--record``: a folder that exists and that we may write in."""
    folder = os.path.abspath(value)
    if not os.path.isdir(folder):
        raise usage.UsageError(f"--record {value}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise usage.UsageError(f"--record {value}: cannot write in folder {folder}")
    return folder


def whole_days(name: str, value: str) -> int:
    """A number of days from the command line, 1 or more."""
    try:
        days = int(value)
    except ValueError:
        raise usage.UsageError(f"{name} must be a whole number of days, not {value!r}") from None
    if days < 1:
        raise usage.UsageError(f"{name} must be 1 or more, not {days}")
    return days


def record_days(value: str) -> int:
    """``--record-days``: a whole number of days, 1 or more."""
    return whole_days("--record-days", value)


def history_days(value: str) -> int:
    """``--history-days``: a whole number of days, 1 or more."""
    return whole_days("--history-days", value)


def day_starts(value: str) -> datetime.time:
    """``--day-starts``: HH:MM on a quarter hour."""
    try:
        return parse_day_starts(value)
    except ValueError as e:
        raise usage.UsageError(str(e)) from None


#: The simulated floor's sizes with ``--simulate``: lowest, highest (those of
#: ``twistd mitelacd-sim``: K and Q records count agents in 3 digits).
SIM_LIMITS = {"sim-agents": (1, 999), "sim-groups": (1, 99), "sim-paths": (1, 99)}
#: The options that shape the simulated floor; they need ``--simulate``.
SIM_OPTIONS = (*SIM_LIMITS, "sim-seed")


def sim_size(name: str, value: str) -> int:
    """``--sim-agents``, ``--sim-groups``, ``--sim-paths``: a whole number within SIM_LIMITS."""
    low, high = SIM_LIMITS[name]
    try:
        size = int(value)
    except ValueError:
        raise usage.UsageError(f"--{name} must be a whole number, not {value!r}") from None
    if not low <= size <= high:
        raise usage.UsageError(f"--{name} must be from {low} to {high}, not {size}")
    return size


def sim_seed(value: str) -> int:
    """``--sim-seed``: a whole number, 0 or more."""
    try:
        seed = int(value)
    except ValueError:
        raise usage.UsageError(f"--sim-seed must be a whole number, not {value!r}") from None
    if seed < 0:
        raise usage.UsageError(f"--sim-seed must be 0 or more, not {seed}")
    return seed


#: The history database's file name beside the data file, when --history is not given.
HISTORY_FILE = "mitelacd-history.db"


class Options(CommandOptions):
    """twistd mitelacd [options]"""

    synopsis = "[--host PBX | --simulate | --source NAME=URL ...] [options]"
    longdesc = (
        "Read the Mitel ACD Real Time Events stream of a 3300 ICP / MiVoice"
        " Business controller and keep the floor's live state in a"
        " mitel_data.json file that display boards read."
    )
    optFlags = [
        [
            "simulate",
            None,
            "Run a simulated PBX on a free loopback port and read that (no PBX needed).",
        ],
        ["access-log", None, "Log every HTTP request (off: boards poll often)."],
        [
            "metrics-public",
            None,
            "Serve /metrics without the token, for a Prometheus that cannot send one.",
        ],
        [
            "mqtt-discovery",
            None,
            "With --mqtt: also publish Home Assistant MQTT discovery configs (under"
            " homeassistant/) for every agent, group and path.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["source"] = []

    def opt_source(self, value: str) -> None:
        """NAME=URL: read the floor from this stream too; give one per source
        (state-model §9). URLs: rte://HOST[:PORT] (ACD, 15373), smdr://HOST[:PORT]
        (1752), mqtt://[USER:PASS@]BROKER[:PORT]/PREFIX (records another
        mitelacd publishes with --mqtt). See docs/sources.md."""
        from mitelacd.sources import SourceError, parse_source

        try:
            spec = parse_source(value, os.environ)
        except SourceError as e:
            raise usage.UsageError(f"--source {e}") from None
        if any(given.name == spec.name for given in self["source"]):
            raise usage.UsageError(f"--source {spec.name}: a source of that name is given twice")
        self["source"].append(spec)

    optParameters = [
        [
            "host",
            None,
            None,
            "PBX (ICP controller) host name or address. Required unless --simulate.",
            pbx_host,
        ],
        ["port", None, DEFAULT_PORT, "TCP port of the ACD real time feed on the PBX.", port_number],
        [
            "failover-seconds",
            None,
            30.0,
            "With several sources: an agent logged out on one and logged in on another"
            " within this many seconds has failed over, and is not shown logged out.",
            lambda v: positive_seconds("--failover-seconds", v),
        ],
        [
            "smdr",
            None,
            None,
            "Also read SMDR (call records: offered, abandoned, service level per path,"
            " see docs/smdr.md) from HOST[:PORT] (port 1752 by default); 'same': from"
            " --host. Default: off ('none'), or the simulator's with --simulate.",
            smdr_target,
        ],
        [
            "smdr-layout",
            None,
            "auto",
            "Read every SMDR line with this layout (standard, extended_digits+tta4+oli..."
            " see docs/smdr.md); 'auto': each line's own, by its length and markers.",
            smdr_layout,
        ],
        [
            "smdr-idle",
            None,
            900.0,
            "Show the SMDR feed as idle after this many seconds without a call record"
            " (SMDR has no keep-alive: idle is not a fault).",
            lambda v: positive_seconds("--smdr-idle", v),
        ],
        [
            "sim-smdr-layout",
            None,
            "standard",
            "With --simulate: the layout of the simulator's SMDR.",
            sim_smdr_layout,
        ],
        # The sizes' defaults are strings, as --help shows them, so that
        # postOptions tells a size given (an int) from one left alone.
        [
            "sim-agents",
            None,
            "60",
            "With --simulate: agents on the simulated floor (1-999).",
            lambda v: sim_size("sim-agents", v),
        ],
        [
            "sim-groups",
            None,
            "6",
            "With --simulate: agent skill groups on the simulated floor (1-99).",
            lambda v: sim_size("sim-groups", v),
        ],
        [
            "sim-paths",
            None,
            "5",
            "With --simulate: ACD paths on the simulated floor (1-99).",
            lambda v: sim_size("sim-paths", v),
        ],
        [
            "sim-seed",
            None,
            None,
            "With --simulate: the same seed (0 or more) gives the same floor, names and"
            " events. Default: random, and logged.",
            sim_seed,
        ],
        ["file", None, "mitel_data.json", "Legacy JSON file written for display boards."],
        [
            "write-interval",
            None,
            1.0,
            "Write the file at most once per this many seconds (the last state is always written).",
            lambda v: positive_seconds("--write-interval", v),
        ],
        [
            "carry-max-age",
            None,
            900.0,
            "At start, carry the file's agents and queues over only when it was last"
            " updated at most this many seconds ago; 0 never carries.",
            lambda v: seconds_or_zero("--carry-max-age", v),
        ],
        [
            "unconfirmed-max-age",
            None,
            None,
            "Set carried agents the PBX has not named to 'out' after this many"
            " seconds (default: only when the PBX date changes).",
            lambda v: positive_seconds("--unconfirmed-max-age", v),
        ],
        [
            "watchdog",
            None,
            60.0,
            "Drop and redial the PBX link after this many seconds without data.",
            lambda v: positive_seconds("--watchdog", v),
        ],
        [
            "stale-after",
            None,
            35.0,
            "Show the feed as not live (API, event stream, board, /healthz 503) after"
            " this many seconds without a valid record; the PBX sends a keep-alive"
            " about every 15 s.",
            lambda v: positive_seconds("--stale-after", v),
        ],
        [
            "retry-delay",
            None,
            1.0,
            "Pause before redialling a lost PBX link; it grows with each attempt"
            " that brings no valid record.",
            lambda v: positive_seconds("--retry-delay", v),
        ],
        [
            "max-retry-delay",
            None,
            30.0,
            "Longest wait between reconnection attempts, in seconds.",
            lambda v: positive_seconds("--max-retry-delay", v),
        ],
        [
            "http",
            None,
            DEFAULT_HTTP,
            "Where to serve HTTP, as a Twisted endpoint: 'tcp:8080' for every"
            " interface, 'tcp:8080:interface=127.0.0.1' for this machine only; 'none': off.",
        ],
        [
            "push-interval",
            None,
            DEFAULT_PUSH_INTERVAL,
            "Send event stream clients the floor's changes at most once per this many"
            " seconds, gathered into one delta; 0 sends every change at once.",
            push_interval,
        ],
        [
            "names",
            None,
            None,
            "A TOML file of agent, group and path names, reason texts, group members"
            " and thresholds (see docs/names.md); reloaded on SIGHUP and when it changes.",
        ],
        [
            "record",
            None,
            None,
            "Keep the raw bytes from the PBX with their arrival times in this folder, a file"
            " per PBX day, compressed when the day is over (see docs/capture.md).",
        ],
        [
            "record-days",
            None,
            31,
            "Keep the captures of --record this many days, the current one included;"
            " older ones are deleted.",
            record_days,
        ],
        [
            "day-starts",
            None,
            # A string, so that --help shows it as it is given; postOptions parses it.
            "00:00",
            "Local time (HH:MM, on a quarter hour) at which the day's figures start"
            " again (see docs/reports.md).",
            day_starts,
        ],
        [
            "history",
            None,
            None,
            "Where to keep the day's figures and agent states: a SQLite file"
            " (sqlite:///path.db or a path), postgresql://user@host:port/db, or 'none'."
            f" Default: {HISTORY_FILE} beside --file.",
        ],
        [
            "history-days",
            None,
            400,
            "Keep this many days of history, today included; older days are deleted daily.",
            history_days,
        ],
        [
            "history-source",
            None,
            None,
            "The name this daemon's rows carry in a history shared by several daemons."
            " Default: the PBX host (simulator with --simulate).",
        ],
        [
            "mqtt",
            None,
            None,
            "Publish the floor, every record and every SMDR line to this MQTT broker:"
            " mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX], mqtts://... for TLS (see"
            " docs/mqtt.md, also for a password kept out of the command line)."
            " Default: off ('none').",
        ],
        [
            "log-level",
            None,
            "info",
            "The least severe of mitelacd's own log lines to write: debug, info"
            " (one line per agent event and queue report), warn or error.",
            log_level,
        ],
        [
            "cors-origin",
            None,
            "*",
            "Access-Control-Allow-Origin sent with every response, for board pages"
            " served elsewhere; 'none' sends no CORS headers.",
        ],
        [
            "token",
            None,
            None,
            "Require 'Authorization: Bearer TOKEN' (or ?token=TOKEN) on every HTTP"
            " endpoint but /healthz. Default: $MITELACD_TOKEN, else open.",
        ],
    ]

    def postOptions(self) -> None:
        self._check_simulation()
        if self["simulate"]:
            if self["host"]:
                raise usage.UsageError("give either --host or --simulate, not both")
            if self["source"]:
                raise usage.UsageError(
                    "--simulate reads its own simulator: for several simulated controllers,"
                    " run twistd mitelacd-sim --controllers N and give a --source for each"
                )
        elif not self["host"] and not any(s.scheme != "smdr" for s in self["source"]):
            raise usage.UsageError(
                "--host is required (or --source NAME=rte://HOST, or --simulate to run"
                " without a PBX)"
            )
        self._check_smdr()
        self["file"] = writable_file(self["file"])
        if isinstance(self["day-starts"], str):  # the default, not given
            self["day-starts"] = day_starts(self["day-starts"])
        if self["record"] is not None:
            self["record"] = writable_folder(self["record"])
        if self["http"].strip().lower() == "none":
            self["http"] = None
        else:
            try:
                check_endpoint(self["http"])
            except ValueError as e:
                raise usage.UsageError(f"--http {self['http']!r}: {e}") from None
        if self["cors-origin"].strip().lower() == "none":
            self["cors-origin"] = None
        if self["token"] is None:
            self["token"] = os.environ.get("MITELACD_TOKEN") or None
        if self["token"] is not None and not self["token"].strip():
            raise usage.UsageError("--token must not be empty")
        history = self["history"]
        if history is None:
            history = os.path.join(os.path.dirname(self["file"].path), HISTORY_FILE)
        if history.strip().lower() == "none":
            self["history"] = None
        else:
            from mitelacd.reports.store import HistoryURLError, parse_url

            try:
                parse_url(history)
            except HistoryURLError as e:
                raise usage.UsageError(f"--history: {e}") from None
            self["history"] = history
        if self["history-source"] is None:
            if self["simulate"]:
                self["history-source"] = "simulator"
            elif self["host"]:
                self["history-source"] = self["host"]
            else:
                self["history-source"] = "+".join(s.name for s in self["source"])
        self._check_mqtt()
        self["names-loaded"] = None
        if self["names"] is not None:
            self["names"] = os.path.abspath(self["names"])
            try:
                self["names-loaded"] = load_names(self["names"])
            except NamesError as e:
                raise usage.UsageError(f"--names: {e}") from None

    def floorSources(self) -> list[str]:
        """The floor's sources at start: ``--host``'s (unnamed), then each ACD or MQTT source."""
        unnamed = [""] if self["host"] or self["simulate"] else []
        return unnamed + [s.name for s in self["source"] if s.scheme != "smdr"]

    def _check_mqtt(self) -> None:
        """``--mqtt``: a broker URL (its password maybe from the environment), and paho-mqtt."""
        given = self["mqtt"]
        if given is not None and given.strip().lower() in ("", "none"):
            given = self["mqtt"] = None
        if given is None:
            if self["mqtt-discovery"]:
                raise usage.UsageError("--mqtt-discovery needs --mqtt")
            return
        from mitelacd.mqtt.url import INSTALL_HINT, BrokerURLError, paho_missing, parse_broker

        try:
            self["mqtt"] = parse_broker(given, os.environ)
        except BrokerURLError as e:
            raise usage.UsageError(f"--mqtt {e}") from None
        if paho_missing():
            raise usage.UsageError(
                f"--mqtt needs paho-mqtt, which is not installed: {INSTALL_HINT}"
            )

    def _check_smdr(self) -> None:
        """``--smdr same`` takes ``--host``; the simulator has its own SMDR."""
        target = self["smdr"]
        layout = self["sim-smdr-layout"]
        if self["simulate"]:
            if target is not None:
                raise usage.UsageError(
                    "--smdr reads a PBX: with --simulate the simulator's SMDR is read"
                )
            if isinstance(layout, str):  # the default, not given
                self["sim-smdr-layout"] = sim_smdr_layout(layout)
            return
        if not isinstance(layout, str):
            raise usage.UsageError("--sim-smdr-layout needs --simulate")
        if target is not None and target[0] is None:
            if not self["host"]:
                raise usage.UsageError("--smdr same needs --host")
            self["smdr"] = (self["host"], target[1])

    def _check_simulation(self) -> None:
        """The --sim-* options need --simulate; the sizes left alone become numbers."""
        given = [f"--{name}" for name in SIM_OPTIONS if isinstance(self[name], int)]
        if given and not self["simulate"]:
            verb = "needs" if len(given) == 1 else "need"
            raise usage.UsageError(f"{', '.join(given)} {verb} --simulate")
        for name in SIM_LIMITS:
            self[name] = int(self[name])

    def webSettings(self) -> WebSettings:
        return WebSettings(
            cors_origin=self["cors-origin"],
            token=self["token"],
            access_log=bool(self["access-log"]),
            push_interval=self["push-interval"],
            metrics_public=bool(self["metrics-public"]),
        )


#: Environment variables of ``mitelacd.tac`` and the options they stand for.
ENVIRONMENT = {
    "MITELACD_HOST": "--host",
    "MITELACD_PORT": "--port",
    "MITELACD_SMDR": "--smdr",
    "MITELACD_SMDR_LAYOUT": "--smdr-layout",
    "MITELACD_SMDR_IDLE": "--smdr-idle",
    "MITELACD_SIM_AGENTS": "--sim-agents",
    "MITELACD_SIM_GROUPS": "--sim-groups",
    "MITELACD_SIM_PATHS": "--sim-paths",
    "MITELACD_SIM_SEED": "--sim-seed",
    "MITELACD_SIM_SMDR_LAYOUT": "--sim-smdr-layout",
    "MITELACD_FILE": "--file",
    "MITELACD_WRITE_INTERVAL": "--write-interval",
    "MITELACD_CARRY_MAX_AGE": "--carry-max-age",
    "MITELACD_UNCONFIRMED_MAX_AGE": "--unconfirmed-max-age",
    "MITELACD_WATCHDOG": "--watchdog",
    "MITELACD_STALE_AFTER": "--stale-after",
    "MITELACD_RETRY_DELAY": "--retry-delay",
    "MITELACD_MAX_RETRY_DELAY": "--max-retry-delay",
    "MITELACD_HTTP": "--http",
    "MITELACD_CORS_ORIGIN": "--cors-origin",
    "MITELACD_PUSH_INTERVAL": "--push-interval",
    "MITELACD_LOG_LEVEL": "--log-level",
    "MITELACD_NAMES": "--names",
    "MITELACD_RECORD": "--record",
    "MITELACD_RECORD_DAYS": "--record-days",
    "MITELACD_DAY_STARTS": "--day-starts",
    "MITELACD_HISTORY": "--history",
    "MITELACD_HISTORY_DAYS": "--history-days",
    "MITELACD_HISTORY_SOURCE": "--history-source",
    "MITELACD_MQTT": "--mqtt",
    "MITELACD_FAILOVER_SECONDS": "--failover-seconds",
}
_TRUE = {"1", "yes", "true", "on"}


def options_from_environment(environ: Mapping[str, str]) -> Options:
    """Options for the .tac file, read and checked like a command line."""
    argv = []
    for name, option in ENVIRONMENT.items():
        value = environ.get(name, "").strip()
        if value:
            argv += [option, value]
    # One source a word: NAME=URL NAME=URL ...
    for source in environ.get("MITELACD_SOURCE", "").split():
        argv += ["--source", source]
    for name, flag in (
        ("MITELACD_SIMULATE", "--simulate"),
        ("MITELACD_ACCESS_LOG", "--access-log"),
        ("MITELACD_METRICS_PUBLIC", "--metrics-public"),
        ("MITELACD_MQTT_DISCOVERY", "--mqtt-discovery"),
    ):
        if environ.get(name, "").strip().lower() in _TRUE:
            argv.append(flag)
    # The token is not put on a command line; Options reads $MITELACD_TOKEN.
    options = Options()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        raise usage_exit(f"mitelacd.tac: {e} (from the MITELACD_* environment)") from None
    return options


class PBXClientService(Service):
    """Dial the PBX when started; stop redialling and hang up when stopped."""

    def __init__(self, host: str, port: int, factory: BackoffClientFactory, reactor: Any) -> None:
        self.host = host
        self.port = port
        self.factory = factory
        self._reactor = reactor
        self._connector: IConnector | None = None

    def startService(self) -> None:
        super().startService()
        log.info(
            "dialling {peer} at {host}:{port}",
            peer=self.factory.peer,
            host=self.host,
            port=self.port,
        )
        self.factory.continueTrying = True
        self._connector = self._reactor.connectTCP(self.host, self.port, self.factory)

    def stopService(self) -> None:
        super().stopService()
        self.factory.stopTrying()
        if self._connector is not None:
            self._connector.disconnect()
            self._connector = None


class SimulatedFloor(MultiService):
    """A simulated PBX on loopback, and the clients that read it (ACD, and SMDR when there is one)."""

    def __init__(
        self, simulator: Any, client: PBXClientService, smdr: PBXClientService | None = None
    ) -> None:
        super().__init__()
        self.simulator = simulator
        self.client = client
        self.smdr = smdr
        simulator.setServiceParent(self)

    def startService(self) -> None:
        super().startService()
        # The simulator has bound its ports by now; dial them.
        self.client.port = self.simulator.port
        clients = [self.client]
        if self.smdr is not None:
            self.smdr.port = self.simulator.smdr_port
            clients.append(self.smdr)
        for client in clients:
            client.privilegedStartService()
            client.startService()

    def stopService(self) -> Any:
        if self.smdr is not None:
            self.smdr.stopService()
        self.client.stopService()
        return super().stopService()


class MitelACDService(MultiService):
    """The whole daemon; ``floor`` is its live state."""

    def __init__(self, floor: FloorState) -> None:
        super().__init__()
        self.floor = floor


def makeService(
    options: Options,
    reactor: Any = None,
    wall: Callable[[], float] | None = None,
    limits: openfiles.Limits | None = None,
) -> MitelACDService:
    """The daemon. ``reactor`` times every wait; ``wall`` (default: the system
    clock) stamps what is shown and stored; ``limits`` (default: this
    process's) is where the open file limit is read and raised.

    Its parts start in the order they are added here and stop in reverse.
    """
    if reactor is None:
        reactor = _steady_reactor()
        wall = time.time if wall is None else wall
    logs.set_level(logs.level_named(options["log-level"]))
    # As many open files as allowed: every event stream client holds one.
    open_files = openfiles.at_start(reactor, limits)
    floor = _floor(options, reactor, Timeline(reactor, wall))
    lock = _lock(options["file"])
    daemon = _Daemon(options, reactor, MitelACDService(floor), _simulation(options))
    # First in, last out: the collector is paced for the daemon's work while it runs.
    heap.YoungCollections().setServiceParent(daemon.top)
    _carry(daemon)
    _names(daemon)
    documents = FloorDocuments(floor)
    writer = _file_writer(daemon, documents, lock)
    recorder = _capture(daemon)
    figures = _history_and_figures(daemon)
    smdr = _smdr(daemon, figures)
    # The live tables forget agents gone since before each day began.
    DayTurn(floor, reactor, options["day-starts"]).setServiceParent(daemon.top)
    mqtt = _mqtt(daemon, documents)
    web = _web(daemon, documents, writer, recorder, figures, smdr, open_files, mqtt)
    client = _pbx(daemon, recorder, smdr, mqtt)
    _readiness(daemon, writer, web, client)
    return daemon.top


@attrs.frozen
class _Daemon:
    """The daemon as it is wired: what each part is made from, and the service it joins."""

    options: Options
    reactor: Any
    top: MitelACDService
    #: The simulated PBX's day with ``--simulate``, else None.
    simulation: FloorScript | None = None

    @property
    def floor(self) -> FloorState:
        return self.top.floor


def _simulation(options: Options) -> FloorScript | None:
    """With ``--simulate``, the simulated floor's day: its seed given, or picked and logged."""
    if not options["simulate"]:
        return None
    from mitelacd.sim.service import FloorScript, random_seed

    seed = options["sim-seed"]
    if seed is None:
        seed = random_seed()
    agents, groups, paths = options["sim-agents"], options["sim-groups"], options["sim-paths"]
    log.info(
        "simulated floor: {agents} agents, {groups} groups, {paths} paths, seed {seed}"
        " (--sim-seed {seed} gives the same floor again)",
        agents=agents,
        groups=groups,
        paths=paths,
        seed=seed,
    )
    # The simulated controller's clock is this machine's, as SMDR's records
    # are placed by their date and start time.
    start = datetime.datetime.now().replace(microsecond=0)
    return FloorScript(seed=seed, agents=agents, groups=groups, paths=paths, start=start)


def _steady_reactor() -> Any:
    """The global reactor, whose waits must not stretch when the system clock steps back."""
    from twisted.internet import reactor

    install_steady_clock(reactor)
    return reactor


def _floor(options: Options, reactor: Any, timeline: Timeline) -> FloorState:
    # Versions start from the start time in microseconds, so that they (and
    # the event ids of the push feed) keep growing across restarts.
    return FloorState(
        reactor,
        stale_after=options["stale-after"],
        first_version=int(timeline.now() * 1e6),
        timeline=timeline,
        sources=options.floorSources(),
        failover_seconds=options["failover-seconds"],
    )


def _lock(path: FilePath[str]) -> FileLock:
    """One daemon per file: a second one stops here, before it reads the file."""
    try:
        return FileLock.acquire(path)
    except FileLockedError as e:
        raise SystemExit(f"mitelacd: {e}") from None


def _carry(daemon: _Daemon) -> None:
    """The file's agents and queues, when recent enough, until the PBX says otherwise."""
    options, floor = daemon.options, daemon.floor
    path: FilePath[str] = options["file"]
    carried = load_legacy(path, floor.timeline.now(), options["carry-max-age"])
    if carried is None:
        return
    floor.carry(carried)
    log.info(
        "carried {agents} agents, {groups} groups and {paths} paths over from {path};"
        " agents stay unconfirmed until the PBX names them",
        agents=len(carried.agents),
        groups=len(carried.groups),
        paths=len(carried.paths),
        path=path.path,
    )
    if options["unconfirmed-max-age"] is not None:
        expiry = CarriedAgentsExpiry(floor, daemon.reactor, options["unconfirmed-max-age"])
        expiry.setServiceParent(daemon.top)


def _names(daemon: _Daemon) -> None:
    """The site's names, reloaded on SIGHUP and when the file changes; a bad file keeps the old."""
    options, floor = daemon.options, daemon.floor
    if options["names"] is None:
        if daemon.simulation is not None:  # a simulated floor has names made up for it
            names = daemon.simulation.names()
            floor.setNames(names)
            log.info("names made up for the simulated floor: {summary}", summary=names.summary())
        return
    floor.setNames(options["names-loaded"])
    NamesWatcher(
        options["names"], daemon.reactor, floor.setNames, names=options["names-loaded"]
    ).setServiceParent(daemon.top)


def _file_writer(daemon: _Daemon, documents: FloorDocuments, lock: FileLock) -> LegacyFileWriter:
    """The legacy file. It holds the lock from here on, and lets it go after its last write."""
    # Before the client: the client hangs up before the writer's final
    # flush, so the last state reaches the file.
    options = daemon.options
    writer = LegacyFileWriter(
        options["file"], documents, daemon.reactor, options["write-interval"], lock=lock
    )
    writer.setServiceParent(daemon.top)
    return writer


def _capture(daemon: _Daemon) -> CaptureRecorder | None:
    """The raw bytes from the PBX, kept with ``--record``."""
    options = daemon.options
    if options["record"] is None:
        return None
    from mitelacd.feed.capture import CaptureRecorder

    # Before the client, so that it stops after the client has hung up.
    recorder = CaptureRecorder(
        options["record"], daemon.reactor, daemon.floor, options["record-days"]
    )
    recorder.setServiceParent(daemon.top)
    return recorder


def _history_and_figures(daemon: _Daemon) -> FiguresService:
    """The day's figures, kept in the history when there is one (``figures.history``)."""
    # The history before the figures: children stop in reverse order, so the
    # figures hand over the interval under way before the history's last write.
    history = _history(daemon)
    figures = FiguresService(
        daemon.floor, daemon.reactor, daemon.options["day-starts"], history=history
    )
    figures.setServiceParent(daemon.top)
    if history is not None:
        # What the figures hold back until today's rows of an earlier run are
        # read waits for the history too: it counts in the backlog.
        history.held = figures.held_rows
    return figures


def _history(daemon: _Daemon) -> HistoryService | None:
    """The history database of ``--history``, unless it is ``none``."""
    options = daemon.options
    if options["history"] is None:
        return None
    from mitelacd.reports.store import open_store
    from mitelacd.reports.writer import SPILL_SUFFIX, HistoryService

    url = options["history"]
    history = HistoryService(
        lambda: open_store(url),
        options["history-source"],
        daemon.reactor,
        daemon.reactor,
        keep_days=options["history-days"],
        url=url,
        day_starts=options["day-starts"],
        # Rows not written at stop wait beside the data file for the next start.
        spill_path=options["file"].path + SPILL_SUFFIX,
    )
    history.setServiceParent(daemon.top)
    return history


def _smdr(daemon: _Daemon, figures: FiguresService) -> SmdrService | None:
    """The SMDR feed's state and figures, with ``--smdr``, ``--simulate``, or an SMDR or MQTT source."""
    options = daemon.options
    sourced = any(spec.scheme != "rte" for spec in options["source"])
    if options["smdr"] is None and daemon.simulation is None and not sourced:
        return None
    from mitelacd.floor.smdr import layout_named
    from mitelacd.reports.smdrlive import SmdrService

    name = options["smdr-layout"]
    smdr = SmdrService(
        daemon.floor,
        daemon.reactor,
        options["day-starts"],
        history=figures.history,
        layout=None if name == "auto" else layout_named(name),
        idle_after=options["smdr-idle"],
        stale_after=options["stale-after"],
        unnamed=options["smdr"] is not None or daemon.simulation is not None,
    )
    smdr.setServiceParent(daemon.top)
    figures.smdr = smdr
    return smdr


def _mqtt(daemon: _Daemon, documents: FloorDocuments) -> MQTTPublisher | None:
    """The floor published to the MQTT broker of ``--mqtt``.

    Before the web service and the PBX clients: it stops after the clients
    have hung up, so that what they read last is published, then
    ``offline``; the floor and its documents outlive it.
    """
    options = daemon.options
    if options["mqtt"] is None:
        return None
    from mitelacd.mqtt.publisher import MQTTPublisher

    publisher = MQTTPublisher(
        options["mqtt"],
        documents,
        options["history-source"],
        daemon.reactor,
        discovery=bool(options["mqtt-discovery"]),
        first_delay=options["retry-delay"],
        max_delay=options["max-retry-delay"],
    )
    publisher.setServiceParent(daemon.top)
    return publisher


def _web(
    daemon: _Daemon,
    documents: FloorDocuments,
    writer: LegacyFileWriter,
    recorder: CaptureRecorder | None,
    figures: FiguresService,
    smdr: SmdrService | None,
    open_files: openfiles.OpenFiles,
    mqtt: MQTTPublisher | None = None,
) -> WebService | None:
    """The site, the event stream and /metrics on ``--http``."""
    options, floor = daemon.options, daemon.floor
    if options["http"] is None:
        return None
    history = figures.history
    metrics = FloorMetrics(floor, daemon.reactor, file=writer)
    metrics.registry.register(FigureMetrics(figures.figures, history))
    if smdr is not None:
        from mitelacd.web.smdrmetrics import SmdrMetrics

        metrics.registry.register(SmdrMetrics(smdr))
    if mqtt is not None:
        from mitelacd.mqtt.metrics import MQTTMetrics

        metrics.registry.register(MQTTMetrics(mqtt))
    settings = options.webSettings()
    settings = attrs.evolve(
        settings,
        max_push_clients=openfiles.push_client_cap(open_files, settings.max_push_clients),
    )
    served = Served(
        floor,
        documents,
        settings,
        file_health=writer.health,
        capture_health=recorder.health if recorder is not None else None,
        history_health=history.health if history is not None else None,
        smdr=smdr,
        mqtt_health=mqtt.health if mqtt is not None else None,
        metrics=metrics,
        reports=Reports(figures, history),
        messages=_messages(daemon),
    )
    web = WebService(options["http"], served, daemon.reactor)
    web.setServiceParent(daemon.top)
    return web


def _messages(daemon: _Daemon) -> MessageService:
    """The message on every board, kept beside the data file over a restart."""
    path: FilePath[str] = daemon.options["file"]
    messages = MessageService(daemon.reactor, daemon.floor.now, MessageFile.beside(path.path))
    messages.setServiceParent(daemon.top)
    return messages


def _pbx(
    daemon: _Daemon,
    recorder: CaptureRecorder | None,
    smdr: SmdrService | None,
    mqtt: MQTTPublisher | None = None,
) -> PBXClientService | None:
    """The client of the PBX's feed, or of a simulated PBX with ``--simulate``; and of SMDR.

    With ``--mqtt`` both tell the publisher of every record and line they read.
    """
    options, reactor = daemon.options, daemon.reactor
    smdr_client = None
    if smdr is not None and (options["smdr"] is not None or daemon.simulation is not None):
        from mitelacd.feed.smdr import SmdrClientFactory

        smdr_factory = SmdrClientFactory(
            smdr,
            reactor,
            max_delay=options["max-retry-delay"],
            first_delay=options["retry-delay"],
            recorder=recorder.of("smdr") if recorder is not None else None,
        )
        if mqtt is not None:
            smdr_factory.line_listeners.append(mqtt.smdr_line)
        host, port = options["smdr"] or ("127.0.0.1", 0)
        smdr_client = PBXClientService(host, port, smdr_factory, reactor)
    named = _sources(daemon, smdr, mqtt)
    if not (options["host"] or daemon.simulation is not None):
        if smdr_client is not None:
            smdr_client.setServiceParent(daemon.top)
        return named
    factory = PBXClientFactory(
        daemon.floor.input(""),
        reactor,
        idle_timeout=options["watchdog"],
        max_delay=options["max-retry-delay"],
        first_delay=options["retry-delay"],
        recorder=recorder,
    )
    if mqtt is not None:
        factory.record_listeners.append(mqtt.record)
    if daemon.simulation is not None:
        from mitelacd.sim.service import SimulatorService

        client = PBXClientService("127.0.0.1", 0, factory, reactor)
        simulator = SimulatorService(
            daemon.simulation,
            port=0,
            interface="127.0.0.1",
            reactor=reactor,
            smdr_port=0,
            smdr_layout=options["sim-smdr-layout"],
        )
        SimulatedFloor(simulator, client, smdr_client).setServiceParent(daemon.top)
    else:
        client = PBXClientService(options["host"], options["port"], factory, reactor)
        client.setServiceParent(daemon.top)
        if smdr_client is not None:
            smdr_client.setServiceParent(daemon.top)
    return client


def _sources(
    daemon: _Daemon, smdr: SmdrService | None, mqtt: MQTTPublisher | None
) -> PBXClientService | None:
    """The links of ``--source``, each with its own backoff, watchdog and capture.

    Says the first ACD link, for systemd's status line when there is no ``--host``.
    """
    options, reactor, floor = daemon.options, daemon.reactor, daemon.floor
    first: PBXClientService | None = None
    for spec in options["source"]:
        recorder = _source_capture(daemon, spec.name)
        if spec.scheme == "rte":
            factory = PBXClientFactory(
                floor.input(spec.name),
                reactor,
                idle_timeout=options["watchdog"],
                max_delay=options["max-retry-delay"],
                first_delay=options["retry-delay"],
                recorder=recorder,
            )
            if mqtt is not None:
                factory.record_listeners.append(mqtt.records_of(spec.name))
            client = PBXClientService(spec.host, spec.port, factory, reactor)
            client.setServiceParent(daemon.top)
            first = first or client
        elif spec.scheme == "smdr":
            if smdr is None:
                continue
            from mitelacd.feed.smdr import SmdrClientFactory

            smdr_factory = SmdrClientFactory(
                smdr.link(spec.name),
                reactor,
                max_delay=options["max-retry-delay"],
                first_delay=options["retry-delay"],
                recorder=recorder.of("smdr") if recorder is not None else None,
            )
            if mqtt is not None:
                smdr_factory.line_listeners.append(mqtt.smdr_lines_of(spec.name))
            PBXClientService(spec.host, spec.port, smdr_factory, reactor).setServiceParent(
                daemon.top
            )
        else:
            from mitelacd.mqtt.relay import FloorRelay
            from mitelacd.mqtt.subscriber import MQTTRecordSource

            relay = FloorRelay(
                floor,
                spec.name,
                spec.broker,
                smdr_line=(
                    functools.partial(smdr.smdrLineFrom, via=spec.name)
                    if smdr is not None
                    else None
                ),
            )
            MQTTRecordSource(
                spec.broker,
                spec.name,
                relay,
                reactor,
                first_delay=options["retry-delay"],
                max_delay=options["max-retry-delay"],
            ).setServiceParent(daemon.top)
    return first


def _source_capture(daemon: _Daemon, name: str) -> CaptureRecorder | None:
    """A named source's own capture: ``--record``'s folder, in a folder of the source's name."""
    options = daemon.options
    if options["record"] is None:
        return None
    from mitelacd.feed.capture import CaptureRecorder

    folder = os.path.join(options["record"], name)
    os.makedirs(folder, exist_ok=True)
    recorder = CaptureRecorder(folder, daemon.reactor, None, options["record-days"])
    recorder.setServiceParent(daemon.top)
    return recorder


def _readiness(
    daemon: _Daemon,
    writer: LegacyFileWriter,
    web: WebService | None,
    client: PBXClientService | None,
) -> None:
    """What systemd is told: READY=1 once the file is written and HTTP listens, the link in words."""
    # Last, so that it starts after the writer and says READY=1 once HTTP
    # listens too, and stops first, saying STOPPING=1. Idle without $NOTIFY_SOCKET.
    ready: list[ReadyWhen] = [started(writer)]
    if web is not None:
        ready.append(web.whenListening)
    SystemdNotifier.fromEnvironment(
        daemon.floor,
        daemon.reactor,
        os.environ,
        ready_when=ready,
        target=(lambda: (client.host, client.port)) if client is not None else None,
        next_attempt=client.factory.nextAttempt if client is not None else None,
    ).setServiceParent(daemon.top)
