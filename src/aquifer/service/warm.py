"""Decisions made before the first request asks for them.

Both policy engines take about a millisecond per resource class and request context (docs/benchmarks.md), so the
first request of a new (agent, purpose, model) would pay tens of milliseconds to decide its prefilter over every
class of the index. :class:`PrefilterWarmer` decides them in the background instead, for every context the catalog
registers, whenever the policy revision or the index version changes. The policy still decides each one: this
only chooses which to ask about early, and a context the catalog does not list is decided when first asked for.
"""

from __future__ import annotations

import logging
import threading
import time

from aquifer.policy import RequestContext
from aquifer.service.errors import Unavailable
from aquifer.service.retrieval import ACTIONS_OF_KINDS, Retriever

log = logging.getLogger("aquifer.service")


def registered_contexts(retriever: Retriever) -> list[RequestContext]:
    """Every (agent, purpose, model) the catalog registers, for each serving action (whether each is allowed is the
    policy's answer, not this list's). Only agents that may act for themselves: users are not known in advance, so
    a user's first request decides its prefilter cold (docs/benchmarks.md)."""
    return [
        RequestContext(agent.id, purpose, model, action=action)
        for agent in retriever.engine.catalog.agents.values()
        if agent.acts_for != "user"
        for purpose in agent.purposes
        for model in agent.models
        for action in ACTIONS_OF_KINDS.values()
    ]


def warm(retriever: Retriever, stop: threading.Event | None = None) -> int:
    """For every registered context: its request decision and, where that allows, its prefilter over every class of
    the current index. Returns how many contexts were decided (fewer when stopped or the engine failed)."""
    version = retriever.index.version()
    if version is None:
        return 0
    contexts = registered_contexts(retriever)
    for n, ctx in enumerate(contexts):
        if stop is not None and stop.is_set():
            return n
        if retriever.engine.decide(ctx).request.allow:
            try:
                retriever.allowed_classes(ctx, version)
            except Unavailable:
                return n
    return len(contexts)


class PrefilterWarmer:
    """A daemon thread that calls :func:`warm` whenever the policy revision or the index version changes (checked
    every ``interval_s``), so the first request of each registered context finds its decisions made."""

    def __init__(self, retriever: Retriever, *, interval_s: float = 1.0) -> None:
        self.retriever, self.interval_s = retriever, interval_s
        self.warmed: tuple[str, int | None] | None = None
        self.last_seconds: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aquifer-prefilter-warmer", daemon=True)

    def start(self) -> PrefilterWarmer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                key = (self.retriever.engine.revision, self.retriever.index.version())
                if key != self.warmed and self.retriever.engine.error is None and key[1] is not None:
                    start = time.perf_counter()
                    done = warm(self.retriever, self._stop)
                    if done == len(registered_contexts(self.retriever)):  # else: stopped, or the engine failed
                        self.last_seconds = time.perf_counter() - start
                        self.warmed = key
            except Exception:  # a warmer that fails only leaves decisions to be made on demand
                log.exception("prefilter warm-up failed; decisions are made on demand")
                self.warmed = None
            self._stop.wait(self.interval_s)
