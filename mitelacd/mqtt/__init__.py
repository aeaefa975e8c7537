"""MQTT out: the floor published to a broker, for home automation, busy lights and signage.

``url`` (``--mqtt``: the broker's URL, read and checked at start, the
password kept out of what is shown), ``link`` (one paho-mqtt client driven
by the reactor: its socket a reader and writer of the reactor, the blocking
connect in a thread of its own), ``publisher`` (the service: the floor's
entities as retained topics, every record and SMDR line read, bounded
pending work that never holds up the floor, reconnection with backoff),
``discovery`` (Home Assistant's MQTT discovery configs, ``--mqtt-discovery``)
and ``metrics`` (its families on /metrics). docs/mqtt.md says what is
published and when.

May import: mitelacd.floor, mitelacd.feed, mitelacd.logs, mitelacd.clock, mitelacd.cli
"""
