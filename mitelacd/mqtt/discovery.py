"""Home Assistant MQTT discovery (``--mqtt-discovery``): a sensor config per agent and queue.

Home Assistant reads retained configs under ``homeassistant/`` and makes an
entity of each: here an agent's state, and each group's and path's calls
waiting and longest wait. Each sensor reads the entity's own retained topic
(``PREFIX/agents/<id>``, ...) through a ``value_template``, and is
available while ``PREFIX/status`` says ``online``. All of them belong to one
device, the daemon (its prefix). docs/mqtt.md shows the configs;
tests/test_mqtt.py holds the code to them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from mitelacd import __version__
from mitelacd.floor.changes import EntityKind

#: Home Assistant's discovery prefix (its default).
DISCOVERY_PREFIX: Final = "homeassistant"

#: The kinds of entity published, and their topic level.
PublishedKind = Literal["agents", "groups", "paths"]
PUBLISHED_KINDS: Final[tuple[PublishedKind, ...]] = ("agents", "groups", "paths")

Sensor = Literal["state", "waiting", "longest_wait"]
#: The sensors of each kind of entity.
SENSORS: Final[Mapping[EntityKind, tuple[Sensor, ...]]] = {
    "agents": ("state",),
    "groups": ("waiting", "longest_wait"),
    "paths": ("waiting", "longest_wait"),
}
#: The word for one entity of each kind, in names and ids.
_ONE: Final[Mapping[EntityKind, str]] = {"agents": "agent", "groups": "group", "paths": "path"}
#: What each sensor reads of the entity's JSON, and what it adds to the config.
_SENSOR: Final[Mapping[Sensor, tuple[str, str, Mapping[str, str]]]] = {
    "state": ("state", "state", {"icon": "mdi:headset"}),
    "waiting": (
        "waiting",
        "waiting",
        {"unit_of_measurement": "calls", "state_class": "measurement", "icon": "mdi:phone-in-talk"},
    ),
    "longest_wait": (
        "longest_wait_seconds",
        "longest wait",
        {"unit_of_measurement": "s", "device_class": "duration", "state_class": "measurement"},
    ),
}


def node_id(prefix: str) -> str:
    """The daemon in discovery topics and ids: its prefix, in the characters allowed there."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", prefix)


def object_id(kind: EntityKind, key: str, sensor: Sensor) -> str:
    """``agent_1001_state``, ``group_610_waiting``, ``path_860_longest_wait``."""
    return f"{_ONE[kind]}_{re.sub(r'[^A-Za-z0-9_-]', '_', key)}_{sensor}"


def config_topic(prefix: str, kind: EntityKind, key: str, sensor: Sensor) -> str:
    """``homeassistant/sensor/<node>/<object>/config``."""
    return f"{DISCOVERY_PREFIX}/sensor/{node_id(prefix)}/{object_id(kind, key, sensor)}/config"


def device(prefix: str) -> dict[str, Any]:
    """The daemon as Home Assistant's device, shared by every sensor."""
    return {
        "identifiers": [f"mitelacd:{prefix}"],
        "name": "mitelacd" if prefix == "mitelacd" else f"mitelacd {prefix}",
        "manufacturer": "mitelacd",
        "model": "Mitel 3300 ACD floor",
        "sw_version": __version__,
    }


def config(
    prefix: str, kind: EntityKind, key: str, sensor: Sensor, name: str | None
) -> dict[str, Any]:
    """The discovery config of one sensor; ``name`` is the entity's from the names file."""
    field, words, extra = _SENSOR[sensor]
    one = _ONE[kind]
    called = f"{one.capitalize()} {key}" + (f" ({name})" if name else "")
    return {
        "name": f"{called} {words}",
        "unique_id": f"{node_id(prefix)}_{object_id(kind, key, sensor)}",
        "state_topic": f"{prefix}/{kind}/{key}",
        "value_template": "{{ value_json." + field + " }}",
        "availability_topic": f"{prefix}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        **extra,
        "device": device(prefix),
    }


def config_payload(
    prefix: str, kind: EntityKind, key: str, sensor: Sensor, name: str | None
) -> bytes:
    """:func:`config` as it is published: compact JSON."""
    return json.dumps(config(prefix, kind, key, sensor, name), separators=(",", ":")).encode()
