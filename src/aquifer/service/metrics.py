"""What the service measures: the time of each request stage (``Server-Timing`` and Prometheus) and its counters.

>>> timings = Timings()
>>> with timings.stage("policy"):
...     pass
>>> list(timings.seconds), timings.server_timing().startswith("policy;dur=")
(['policy'], True)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from aquifer.export import tracing

if TYPE_CHECKING:
    from aquifer.audit.log import Appended

STAGES = ("auth", "policy", "embedding", "search", "assembly", "log")
"""The stages of a governed request, in order (docs/benchmarks.md reports each)."""


@dataclass
class Timings:
    """Seconds spent per stage of one request (a stage entered twice adds up). When traces are exported
    (:mod:`aquifer.export.tracing`), each stage is a span ``aquifer.<stage>`` too, a child of the span current at
    the first stage (the request's), which :meth:`annotate` and :meth:`logged` add attributes to."""

    seconds: dict[str, float] = field(default_factory=dict)
    span: Any = field(default=None, init=False, repr=False, compare=False)
    """The request's span (None while tracing is off)."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            if tracing.TRACER is None:
                yield
            else:
                self.span = self.span or tracing.current_span()
                with tracing.stage_span(name):
                    yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def annotate(self, **attributes: str | int) -> None:
        """Attributes ``aquifer.<name>`` of the request's span (ids and counts only: never a text it was sent)."""
        if self.span is not None:
            self.span.set_attributes({f"aquifer.{k}": v for k, v in attributes.items()})

    def logged(self, appended: Appended, record: Mapping[str, Any]) -> None:
        """The decision record just logged, on the request's span: its decision id, who, why, how many chunks."""
        if self.span is not None:
            self.span.set_attributes(tracing.decision_attributes(appended.decision_id, record))

    def server_timing(self) -> str:
        """The ``Server-Timing`` header: each stage's milliseconds."""
        return ", ".join(f"{s};dur={self.seconds[s] * 1000:.3f}" for s in STAGES if s in self.seconds)


class Metrics:
    """The Prometheus metrics of one service (its own registry, served at ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage = Histogram(
            "aquifer_stage_seconds",
            "Time per request stage",
            ["stage"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.requests = Counter(
            "aquifer_requests_total", "Requests by route and status", ["route", "status"], registry=self.registry
        )
        self.chunks = Counter(
            "aquifer_chunk_decisions_total",
            "Per-chunk decisions by outcome and reason",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.upstream = Histogram(
            "aquifer_upstream_seconds",
            "Gateway calls to model endpoints, by model and outcome",
            ["model", "outcome"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.mcp = Counter(
            "aquifer_mcp_calls_total",
            "MCP tool calls and resource reads, by tool (or resource) and outcome (ok, or the error kind)",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "aquifer_prefilter_alerts_total",
            "Chunks the prefilter let through but the policy denied (dropped)",
            registry=self.registry,
        )

    def observe_stages(self, timings: Timings) -> None:
        for stage in STAGES[1:]:  # auth is observed by the authentication dependency
            if stage in timings.seconds:
                self.stage.labels(stage).observe(timings.seconds[stage])

    def observe_upstream(self, model: str, outcome: str, seconds: float) -> None:
        self.upstream.labels(model, outcome).observe(seconds)
