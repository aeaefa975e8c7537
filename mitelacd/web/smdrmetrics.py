"""Prometheus metrics of the SMDR feed and of the calls it tells of (docs/metrics.md).

Counters only grow, from the daemon's start: a call is counted as offered
when its first record comes, as abandoned or answered within target when a
record first brings it there. A call a later record takes elsewhere (a
requeue answered after all) is not taken back; the reports hold the
revised figures.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from mitelacd.reports.smdrlive import SmdrService


class SmdrMetrics:
    """A custom collector over a :class:`~mitelacd.reports.smdrlive.SmdrService`."""

    def __init__(self, smdr: SmdrService) -> None:
        self.smdr = smdr

    def collect(self) -> Iterator[Metric]:
        smdr = self.smdr
        records = CounterMetricFamily(
            "mitelacd_smdr_records",
            "SMDR lines by the layout they were read with and what they say of an ACD path"
            " call (outcome 'unreadable': the line fits no layout).",
            labels=["layout", "outcome"],
        )
        for (layout, outcome), count in sorted(smdr.records.items()):
            records.add_metric([layout, outcome], count)
        yield records
        # Every path offered a call has each series, from 0.
        paths = sorted(smdr.offered)
        for name, counts, text in (
            ("mitelacd_path_offered", smdr.offered, "Calls offered to the path (SMDR)."),
            (
                "mitelacd_path_abandoned",
                smdr.abandoned,
                "Calls abandoned on the path after the short-abandon time (SMDR; provisional"
                " until the site confirms its markers).",
            ),
            (
                "mitelacd_path_answered_within_target",
                smdr.answered_within_target,
                "Calls of the path answered within its service level target (SMDR).",
            ),
        ):
            family = CounterMetricFamily(name, text, labels=["path"])
            for path in paths:
                family.add_metric([path], counts[path])
            yield family
        yield GaugeMetricFamily(
            "mitelacd_smdr_connected",
            "1 while the SMDR link is connected.",
            value=int(smdr.connected),
        )
        yield GaugeMetricFamily(
            "mitelacd_smdr_idle",
            "1 while the SMDR link is connected and has brought no line for --smdr-idle"
            " seconds (normal when nobody calls).",
            value=int(smdr.idle()),
        )
        yield CounterMetricFamily(
            "mitelacd_smdr_connections", "Connections made to SMDR.", value=smdr.connections
        )
        if smdr.last_line_at is not None:
            yield GaugeMetricFamily(
                "mitelacd_smdr_last_line_timestamp_seconds",
                "When the last SMDR line came (Unix time).",
                value=smdr.last_line_at,
            )
