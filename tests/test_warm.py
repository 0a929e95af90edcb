"""Decisions made ahead of the first request: the warmer decides every registered (agent, purpose, model)'s request
and prefilter over the real sample index, and again after the policy changes, so a first request asks the engine
nothing. Counted on the real embedded engine (a wrapper counts its calls)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from aquifer.policy import EmbeddedBackend, PolicyEngine, PolicySource, RequestContext
from aquifer.service.retrieval import Retriever
from aquifer.service.warm import PrefilterWarmer, registered_contexts, warm
from aquifer.settings import Settings
from tests.conftest import copy_materialized

pytestmark = pytest.mark.slow


class CountingBackend:
    """The embedded engine, counting how many decisions it is asked for."""

    name = "embedded"

    def __init__(self) -> None:
        self.inner, self.decisions = EmbeddedBackend(), 0

    def load(self, source: PolicySource) -> None:
        self.inner.load(source)

    def evaluate(self, entrypoint: str, input_doc: dict[str, Any]) -> Any:
        self.decisions += 1
        return self.inner.evaluate(entrypoint, input_doc)

    def decide_many(self, context: dict[str, Any], resources: list[dict[str, Any]]) -> list[Any]:
        self.decisions += len(resources)
        return self.inner.decide_many(context, resources)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path) -> tuple[Retriever, CountingBackend]:
    root = tmp_path_factory.mktemp("warm")
    data = copy_materialized(materialized_sample, root)
    settings = Settings(
        data_dir=data,
        policy_dir=root / "policies",
        catalog_dir=root / "catalog",
        credentials_file=root / "catalog" / "credentials.yaml",
    )
    backend = CountingBackend()
    engine = PolicyEngine(backend, settings.policy_dir, settings.catalog_dir, reload_interval_s=0.0)
    return Retriever(settings, engine=engine), backend


def test_warm_decides_every_registered_context_so_first_requests_ask_the_engine_nothing(
    setup: tuple[Retriever, CountingBackend],
) -> None:
    retriever, backend = setup
    contexts = registered_contexts(retriever)
    assert warm(retriever) == len(contexts) >= 8
    agents = retriever.engine.catalog.agents
    assert {c.agent for c in contexts} == {a for a in agents if agents[a].acts_for != "user"}, (
        "agents that act only for users are not warmed: their users are not known in advance"
    )
    version = retriever.index.version()
    assert version is not None
    classes = len(retriever.index.classes(version=version))
    assert backend.decisions >= classes, "the prefilter classes were decided"
    before = backend.decisions
    served = 0
    for ctx in contexts:
        if retriever.engine.decide(ctx).request.allow:
            served += bool(retriever.allowed_classes(ctx, version)[0])
    assert served > len(contexts) // 2, "most registered contexts may see something"
    assert backend.decisions == before, "every first request found its decisions made"
    unlisted = RequestContext("support_assistant", "marketing", "local_smollm2")
    assert not retriever.engine.decide(unlisted).request.allow
    assert backend.decisions == before + 1, "a context the catalog does not list is decided when asked for"


def test_the_warmer_decides_again_after_the_policy_changes(setup: tuple[Retriever, CountingBackend]) -> None:
    retriever, backend = setup
    warmer = PrefilterWarmer(retriever, interval_s=0.05).start()
    try:
        deadline = time.monotonic() + 60
        while warmer.warmed is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first = warmer.warmed
        assert first is not None and first[0] == retriever.engine.revision
        trust = retriever.settings.policy_dir / "aquifer/context/trust.rego"
        trust.write_text(trust.read_text() + "\n# a reviewer's note: the revision changes, the decisions do not\n")
        while warmer.warmed in (None, first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warmer.warmed is not None and warmer.warmed != first
        assert warmer.last_seconds is not None
        before = backend.decisions
        ctx = RequestContext("support_assistant", "customer_support", "local_smollm2")
        assert retriever.allowed_classes(ctx, retriever.index.version() or 0)[0]
        assert backend.decisions == before, "decided under the new revision before anyone asked"
    finally:
        warmer.stop()
