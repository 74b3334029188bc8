"""Prometheus metrics, on a registry of our own (no process-wide state), and the "last
successful call" of each platform that /healthz reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.clock import Clock


class Metrics:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "cds_updates_total", "Updates handled, by platform and kind",
            ["platform", "kind"], registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "cds_handler_seconds", "Time to handle one update, by kind", ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.handler_errors = Counter(
            "cds_handler_errors_total", "Handlers that raised (answered with an apology)",
            ["platform"], registry=self.registry,
        )
        self.platform_ok = Gauge(
            "cds_platform_last_success_timestamp_seconds",
            "Unix time of the last successful exchange with each platform", ["platform"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "cds_outbox_deliveries_total",
            "Outbox rows finished or retried, by platform and outcome "
            "(sent, failed, retry_after, transient, migrated, quiet)",
            ["platform", "outcome"], registry=self.registry,
        )
        # perf (#16, #10 item 4): updates skipped instead of stopping the bot, the wait of an
        # update for its turn, and the database work done per update.
        self.updates_skipped = Counter(
            "cds_updates_skipped_total",
            "Updates skipped: unparseable (the library cannot read them) or failed",
            ["platform", "reason"], registry=self.registry,
        )
        self.update_wait_seconds = Histogram(
            "cds_update_wait_seconds", "Time an update waited for its turn (per-chat order)",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.last_success: dict[str, datetime] = {}
        # What is wrong right now, by part ("telegram", "database"): /healthz answers 503.
        self.down: dict[str, str] = {}
        self._gauges: dict[str, Gauge] = {}

    def watch_database(self, db: _Counted) -> None:
        """Expose the database's own statement and transaction counts (bench, tuning)."""
        self.registry.register(_DatabaseCollector(db))

    def mark_down(self, part: str, reason: str) -> None:
        self.down[part] = reason

    def mark_up(self, part: str) -> None:
        self.down.pop(part, None)

    def mark_ok(self, platform: str) -> None:
        self.down.pop(platform, None)
        now = self._clock.now()
        self.last_success[platform] = now
        self.platform_ok.labels(platform).set(now.timestamp())

    def gauge(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Gauge:
        """A gauge features keep current (outbox depth, open feedback); made once per name."""
        if name not in self._gauges:
            self._gauges[name] = Gauge(name, help_text, list(labels), registry=self.registry)
        return self._gauges[name]

    def now(self) -> datetime:
        """The metrics' clock, for figures computed at scrape time (ages, overdue)."""
        return self._clock.now()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Counted(Protocol):
    statements: int
    transactions: int


class _DatabaseCollector(Collector):
    def __init__(self, db: _Counted) -> None:
        self._db = db

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily("cds_db_statements", "SQL statements sent to the database",
                                  value=self._db.statements)
        yield CounterMetricFamily("cds_db_transactions", "Database transactions begun",
                                  value=self._db.transactions)
