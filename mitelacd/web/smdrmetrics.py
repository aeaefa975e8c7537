"""Prometheus metrics of the SMDR feed and of the calls it tells of (docs/metrics.md).

Counters only grow, from the daemon's start: a call is counted as offered
when its first record comes, as abandoned or answered within target when a
record first brings it there. A call a later record takes elsewhere (a
requeue answered after all) is not taken back; the reports hold the
revised figures.

The link's series carry the ``source`` label: the name of each SMDR link's
source, "" for the link of ``--smdr``.
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
        # One series per link, by its source's name ("" for --smdr's).
        links = list(smdr.links.values())
        idle = set(smdr.idle_links())
        connected = GaugeMetricFamily(
            "mitelacd_smdr_connected",
            "1 while the SMDR link of the source is connected.",
            labels=["source"],
        )
        idles = GaugeMetricFamily(
            "mitelacd_smdr_idle",
            "1 while the SMDR link of the source is connected and has brought no line for"
            " --smdr-idle seconds (normal when nobody calls).",
            labels=["source"],
        )
        connections = CounterMetricFamily(
            "mitelacd_smdr_connections",
            "Connections made to the SMDR of the source.",
            labels=["source"],
        )
        last_line = GaugeMetricFamily(
            "mitelacd_smdr_last_line_timestamp_seconds",
            "When the last SMDR line of the source came (Unix time).",
            labels=["source"],
        )
        for link in links:
            connected.add_metric([link.name], int(link.connected))
            idles.add_metric([link.name], int(link.name in idle))
            connections.add_metric([link.name], link.connections)
            if link.last_line_at is not None:
                last_line.add_metric([link.name], link.last_line_at)
        yield connected
        yield idles
        yield connections
        if last_line.samples:
            yield last_line
