"""``GET /metrics``: the server's figures in Prometheus text format, for a Prometheus to scrape.

Read from the database at each scrape (one read transaction of three GROUP BY queries), so
they cover every worker on the database, not only this process:

=========================================== ================ =======================================
name                                        labels           meaning
=========================================== ================ =======================================
``broadcaster_deliveries``                  channel, state   deliveries in each state (``pending``,
                                                             ``sending``, ``sent``, ``unknown``,
                                                             ``retrying``, ``dead``, ``cancelled``)
``broadcaster_dead_letters``                channel          dead deliveries a person can retry
                                                             (``broadcaster deadletters``)
``broadcaster_queue_jobs``                  state            jobs ``queued`` (due or not) and
                                                             ``running`` (claimed by a worker)
``broadcaster_queue_due_jobs``              —                queued jobs whose time has come
``broadcaster_oldest_due_job_age_seconds``  —                how long the longest-waiting due job
                                                             has waited (0: none is due)
``broadcaster_approval_decisions``          decision, via    approval decisions (``approve``,
                                                             ``reject``) made at the ``cli`` or in
                                                             ``teams``
=========================================== ================ =======================================

Observed in this process, by the worker running in it (empty with ``serve --no-worker``):

``broadcaster_send_seconds`` (histogram; label ``channel``): how long each platform call of a
send took, from the request to the answer (or to the deadline).

And the standard ``process_*`` figures of the server's process (CPU, memory, open files).

Labels hold channel names, states and decision kinds only: never a recipient, a person or a
secret. A database that fails or does not answer within ``ServerContext.database_timeout``
gets 503 (``{"error": ...}``) rather than a scrape that hangs or numbers that are not true.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from broadcaster.app import App
from broadcaster.model import DeliveryState
from broadcaster.queue.jobs import depth
from broadcaster.server.bounded import BoundedRead
from broadcaster.server.context import ServerContext
from broadcaster.server.http import error_response
from broadcaster.store.counts import decision_counts, delivery_counts

__all__ = ["SEND_SECONDS_BUCKETS", "metrics_registry", "routes"]


#: From a fast API answer to a call cut off at its deadline (a platform call's timeout).
SEND_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def routes(context: ServerContext) -> list[BaseRoute]:
    """The metrics route of this server."""
    registry = metrics_registry(context)
    scrape = BoundedRead(functools.partial(generate_latest, registry), "metrics")

    async def metrics(request: Request) -> Response:
        try:
            body = await scrape(context.database_timeout)
        except Exception:  # a database that fails or hangs: no figures rather than wrong ones
            return error_response(
                503,
                "the database did not answer, so there are no figures; "
                "GET /healthz and the server's log say more",
                headers={"Cache-Control": "no-store"},
            )
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]


def metrics_registry(context: ServerContext) -> CollectorRegistry:
    """A registry of this server's own (never the global one): its database figures, the send
    latency of the worker in its process, and the process's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseCollector(context.app))
    ProcessCollector(registry=registry)
    latency = Histogram(
        "broadcaster_send_seconds",
        "Seconds each platform call of a send took (worker in this process only).",
        ["channel"],
        buckets=SEND_SECONDS_BUCKETS,
        registry=registry,
    )
    if context.worker is not None:
        for channel in _configured_channels(context.app):
            latency.labels(channel=channel)  # present at 0 from the start: rate() works
        context.worker.observe_sends(
            lambda channel, seconds: latency.labels(channel=channel).observe(seconds)
        )
    return registry


class _DatabaseCollector(Collector):
    """The database's figures, read at each scrape (in the scrape's thread)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> Iterable[Metric]:
        # Names only (for the registry's duplicate check), without reading the database.
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        with self.app.store.read() as conn:
            now = self.app.queue_clock(conn)
            queue = depth(conn, now)
            counted = delivery_counts(conn)
            decisions = decision_counts(conn)
        deliveries, dead_letters, jobs, due, oldest, approvals = self._families()
        # Every state of every configured channel, zeros included: a series that vanishes when
        # its count drops to 0 reads as "no data", not as 0.
        channels = sorted(_configured_channels(self.app) | {row.channel for row in counted})
        found = {(row.channel, row.state): row for row in counted}
        for channel in channels:
            for state in DeliveryState:
                row = found.pop((channel, state.value), None)
                deliveries.add_metric([channel, state.value], row.count if row else 0)
            dead = sum(r.dead_letters for r in counted if r.channel == channel)
            dead_letters.add_metric([channel], dead)
        for (channel, other), row in sorted(found.items()):  # a state this version lacks
            deliveries.add_metric([channel, other], row.count)
        jobs.add_metric(["queued"], queue.queued)
        jobs.add_metric(["running"], queue.running)
        due.add_metric([], queue.due)
        age = 0.0 if queue.oldest_due is None else (now - queue.oldest_due).total_seconds()
        oldest.add_metric([], max(0.0, age))
        for decision in decisions:
            approvals.add_metric([decision.decision, decision.via], decision.count)
        return [deliveries, dead_letters, jobs, due, oldest, approvals]

    @staticmethod
    def _families() -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "broadcaster_deliveries",
            "Deliveries by channel and current state.",
            labels=["channel", "state"],
        )
        yield GaugeMetricFamily(
            "broadcaster_dead_letters",
            "Dead deliveries waiting for a person (broadcaster deadletters).",
            labels=["channel"],
        )
        yield GaugeMetricFamily(
            "broadcaster_queue_jobs",
            "Jobs queued (due or not) and running (claimed by a worker).",
            labels=["state"],
        )
        yield GaugeMetricFamily("broadcaster_queue_due_jobs", "Queued jobs whose time has come.")
        yield GaugeMetricFamily(
            "broadcaster_oldest_due_job_age_seconds",
            "Seconds the longest-waiting due job has waited (0: none is due).",
        )
        yield GaugeMetricFamily(
            "broadcaster_approval_decisions",
            "Approval decisions by decision (approve, reject) and way (cli, teams).",
            labels=["decision", "via"],
        )


def _configured_channels(app: App) -> set[str]:
    return {str(target.channel) for target in app.config.targets}
