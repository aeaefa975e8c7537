"""Prometheus counters of the day's figures, and of the history writer (docs/metrics.md).

Counters only grow: they count from the daemon's start, not from the start
of the report day, and a stretch is counted once it is closed (at its end,
or at the end of each 15-minute interval while it goes on).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from mitelacd.reports.figures import DayFigures

#: Per agent: (figure, metric name without _total, help).
_AGENT_COUNTERS = (
    ("acd_calls", "mitelacd_agent_acd_calls", "ACD calls answered (G and S), by agent."),
    (
        "acd_talk_seconds",
        "mitelacd_agent_acd_talk_seconds",
        "Time talking on ACD calls, less time held, by agent.",
    ),
    ("hold_seconds", "mitelacd_agent_hold_seconds", "Time calls were held, by agent."),
    ("wrap_up_seconds", "mitelacd_agent_wrap_up_seconds", "Time in wrap-up, by agent."),
    ("personal_calls", "mitelacd_agent_personal_calls", "Personal calls answered, by agent."),
    ("outgoing_calls", "mitelacd_agent_outgoing_calls", "Calls made, by agent."),
    (
        "rang_unanswered",
        "mitelacd_agent_rang_unanswered",
        "Calls that rang and were not answered within 2 s, by agent.",
    ),
    ("logged_in_seconds", "mitelacd_agent_logged_in_seconds", "Time logged in, by agent."),
)
_PATH_COUNTERS = (
    ("acd_calls", "mitelacd_path_acd_calls", "ACD calls answered, by path."),
    (
        "acd_talk_seconds",
        "mitelacd_path_acd_talk_seconds",
        "Time agents talked on ACD calls of the path, less time held.",
    ),
)


class HistoryStats(Protocol):
    def health(self) -> dict[str, Any]: ...


class FigureMetrics:
    """A collector for the registry of :class:`~mitelacd.web.metrics.FloorMetrics`."""

    def __init__(self, figures: DayFigures, history: HistoryStats | None = None) -> None:
        self.figures = figures
        self.history = history

    def collect(self) -> Iterator[Metric]:
        agents = list(self.figures.totals("agent"))
        for figure, name, text in _AGENT_COUNTERS:
            family = CounterMetricFamily(name, text, labels=["agent"])
            for agent, sums in agents:
                family.add_metric([agent], sums.get(figure))
            yield family
        not_ready = CounterMetricFamily(
            "mitelacd_agent_not_ready_seconds",
            "Time in DND or make busy, by agent, kind (dnd, make_busy) and reason code.",
            labels=["agent", "kind", "reason"],
        )
        for agent, sums in agents:
            for (kind, reason), seconds in sums.reasons.items():
                not_ready.add_metric([agent, kind, "" if reason is None else str(reason)], seconds)
        yield not_ready
        paths = list(self.figures.totals("path"))
        for figure, name, text in _PATH_COUNTERS:
            family = CounterMetricFamily(name, text, labels=["path"])
            for path, sums in paths:
                family.add_metric([path], sums.get(figure))
            yield family
        history = self.history
        if history is None:
            return
        health = history.health()
        yield CounterMetricFamily(
            "mitelacd_history_written_rows",
            "Rows written to the history database.",
            value=health.get("written_rows", 0),
        )
        yield CounterMetricFamily(
            "mitelacd_history_dropped_rows",
            "Rows lost: dropped while the history database was down for too long, or not"
            " written at stop and not saved.",
            value=health.get("dropped_rows", 0),
        )
        yield CounterMetricFamily(
            "mitelacd_history_refused_rows",
            "Rows the history database refused (a value it cannot take), set aside.",
            value=health.get("refused_rows", 0),
        )
        yield GaugeMetricFamily(
            "mitelacd_history_backlog_rows",
            "Rows waiting to be written to the history database.",
            value=health.get("backlog", 0),
        )
        yield GaugeMetricFamily(
            "mitelacd_history_writing",
            "1 while history writes work and take every row, 0 while they fail.",
            value=1 if health.get("ok") else 0,
        )
