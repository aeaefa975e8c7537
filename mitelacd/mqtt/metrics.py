"""Prometheus metrics of the MQTT publisher (``--mqtt``, docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from mitelacd.mqtt.publisher import MQTTPublisher


class MQTTMetrics:
    """A custom collector over a :class:`~mitelacd.mqtt.publisher.MQTTPublisher`."""

    def __init__(self, publisher: MQTTPublisher) -> None:
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        publisher = self.publisher
        yield GaugeMetricFamily(
            "mitelacd_mqtt_connected",
            "1 while the MQTT broker of --mqtt is connected and has accepted the daemon.",
            value=int(publisher.connected),
        )
        yield CounterMetricFamily(
            "mitelacd_mqtt_published",
            "Messages the MQTT broker acknowledged: entity topics, records, SMDR lines,"
            " discovery configs and the status.",
            value=publisher.published,
        )
        yield CounterMetricFamily(
            "mitelacd_mqtt_dropped",
            "Records and SMDR lines dropped, the oldest first, while more waited for the"
            " MQTT broker than are kept.",
            value=publisher.dropped,
        )
        yield GaugeMetricFamily(
            "mitelacd_mqtt_pending",
            "Messages waiting for the MQTT broker, or sent and not yet acknowledged.",
            value=publisher.pending,
        )
