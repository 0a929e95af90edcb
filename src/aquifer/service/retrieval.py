"""Governed retrieval, independent of HTTP: authenticate, decide, prefilter, search, re-check, redact, pack, log.

The steps of ``POST /v1/context`` in order, each timed as a stage (auth, policy, embedding, search, assembly, log):

1. the token names an agent (:class:`aquifer.credentials.Authenticator`);
2. the request-level decision (purpose, model) - refused before any search;
3. the prefilter: the policy evaluated once over every resource class present in the index, cached per (agent,
   purpose, model, policy revision, index version), becomes a LanceDB ``where`` on ``class_key``, so the search
   returns top_k allowed chunks, never fewer because of filtering;
4. the vector search, with the prefilter; chunks past their freshness SLA (``fresh_until``) are excluded by id;
5. a per-chunk decision on what came back: a chunk the policy denies is dropped even though the prefilter let it
   through, and the event is logged as an alert;
6. obligations: PII spans redacted with typed placeholders;
7. near-duplicates collapsed (cosine similarity of their vectors at or above ``near_duplicate_similarity``: the
   best-scoring copy is kept), then packing to ``max_tokens`` (counted with the embedding model's tokenizer), in a
   stable order;
8. the decision record, fsync'd to the log, and only then the answer.

:meth:`Retriever.retrieve` does steps 2-7 and :meth:`Retriever.commit` step 8, so the chat gateway
(:mod:`aquifer.service.gateway`) can add where the context is going to the same record before anything leaves.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aquifer.audit import DecisionLog, decision_record
from aquifer.credentials import AuthenticationError, Authenticator, CredentialStore
from aquifer.embedding import Embedder
from aquifer.index import ChunkIndex, class_key, resource_of, sql_in
from aquifer.pii import PiiSpan, redact
from aquifer.policy import POLICY_ENGINE_UNAVAILABLE, BatchDecision, PolicyEngine, RequestContext, Resource
from aquifer.service.schemas import (
    Chunk,
    ContextRequest,
    ContextResponse,
    Layered,
    Receipt,
    Redaction,
    Withheld,
)
from aquifer.settings import Settings
from aquifer.tokenizer import EMBEDDING_MODEL, count_tokens

STAGES = ("auth", "policy", "embedding", "search", "assembly", "log")


class RetrievalError(Exception):
    status = 500
    error = "internal"

    def __init__(self, detail: str, *, reasons: list[str] | None = None, explanations: list[str] | None = None,
                 field: str | None = None) -> None:  # fmt: skip
        super().__init__(detail)
        self.detail, self.reasons, self.explanations, self.field = detail, reasons or [], explanations or [], field


class Unauthenticated(RetrievalError):
    status, error = 401, "unauthenticated"


class Forbidden(RetrievalError):
    status, error = 403, "forbidden"


class NotFound(RetrievalError):
    status, error = 404, "not_found"


class InvalidRequest(RetrievalError):
    status, error = 422, "invalid_request"


class BadRequest(RetrievalError):
    """A gateway request that cannot be governed as sent (OpenAI-compatible routes answer 400, not 422)."""

    status, error = 400, "invalid_request"


class UpstreamError(RetrievalError):
    """The model endpoint was unreachable or answered with an error."""

    status, error = 502, "upstream_error"


class UpstreamTimeout(RetrievalError):
    """The model endpoint did not answer (or stopped streaming) within the model's ``timeout_s``."""

    status, error = 504, "upstream_timeout"


class Unavailable(RetrievalError):
    status, error = 503, "unavailable"


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class Alert:
    chunk_id: str
    reasons: list[str]


@dataclass
class Retrieval:
    """One governed retrieval before it is logged: what the decision record and the answer are made of.
    ``rows``, ``resources`` and ``decided.resources`` run parallel (what the search returned); ``chunks`` is what
    is served."""

    ctx: RequestContext
    version: int
    decision_id: str
    rows: list[dict[str, Any]]
    resources: list[Resource]
    decided: BatchDecision
    withheld: list[Withheld]
    chunks: list[Chunk] = field(default_factory=list)
    near_duplicates: int = 0
    over_budget: int = 0

    @classmethod
    def combine(cls, parts: Sequence[Retrieval], chunks: Sequence[Chunk]) -> Retrieval:
        """One retrieval (the last part's decision id) out of several made for one answer, e.g. one per turn of a
        conversation: every row once, ``chunks`` served, their receipts naming the combined decision."""
        last = parts[-1]
        if len({p.decided.revision for p in parts}) > 1 or len({p.version for p in parts}) > 1:
            raise Unavailable("the policy or the index changed while this request was being decided; retry it")
        rows, resources, decisions, seen = [], [], [], set()
        for part in parts:
            for row, resource, decision in zip(part.rows, part.resources, part.decided.resources, strict=True):
                if row["chunk_id"] not in seen:
                    seen.add(row["chunk_id"])
                    rows.append(row)
                    resources.append(resource)
                    decisions.append(decision)
        decided = BatchDecision(last.ctx, last.decided.revision, last.decided.request, decisions)
        stamped = [
            c.model_copy(update={"receipt": c.receipt.model_copy(update={"decision_id": last.decision_id})})
            for c in chunks
        ]
        return cls(last.ctx, last.version, last.decision_id, rows, resources, decided, last.withheld, stamped,
                   sum(p.near_duplicates for p in parts), sum(p.over_budget for p in parts))  # fmt: skip


class Retriever:
    """Everything ``/v1/context`` needs, created once (the service's lifespan) and shared by requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: PolicyEngine | None = None,
        index: ChunkIndex | None = None,
        embedder: Embedder | None = None,
        log: DecisionLog | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or PolicyEngine.from_settings(settings)
        self.index = index or ChunkIndex.from_settings(settings)
        self.embedder = embedder or Embedder()
        self.log = log or DecisionLog(settings.decisions_dir, segment_bytes=settings.decision_log_segment_bytes)
        self.authenticator = authenticator or Authenticator(
            CredentialStore(settings.credentials_file), production=settings.environment == "production"
        )
        self._prefilters: dict[tuple[RequestContext, str, int], tuple[list[str], list[Withheld]]] = {}
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.alerts: list[Alert] = []

    # -- readiness -------------------------------------------------------------------------------------------------

    def readiness(self) -> dict[str, str]:
        """What is not ready, by component (empty when ready)."""
        problems: dict[str, str] = {}
        if self.engine.error:
            problems["policy_engine"] = self.engine.error
        if not self.index.exists():
            problems["index"] = f"no index at {self.index.uri}: materialize index/chunks"
        return problems

    # -- steps -----------------------------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> str:
        try:
            return self.authenticator.authenticate(token, catalog=self.engine.catalog)
        except AuthenticationError as exc:
            raise Unauthenticated(str(exc)) from None

    def _request_decision(self, ctx: RequestContext) -> BatchDecision:
        batch = self.engine.decide(ctx)
        if batch.request.reasons == [POLICY_ENGINE_UNAVAILABLE]:
            raise Unavailable("the policy engine cannot decide: " + "; ".join(batch.request.explanations),
                              reasons=[POLICY_ENGINE_UNAVAILABLE])  # fmt: skip
        return batch

    def _refuse(self, ctx: RequestContext, batch: BatchDecision, *, kind: str) -> Forbidden:
        self.log.append(decision_record(batch, kind=kind, locality=self._locality(ctx.model)))
        return Forbidden(
            f"agent {ctx.agent} may not use purpose {ctx.purpose} with model {ctx.model}: "
            + "; ".join(batch.request.explanations or batch.request.reasons),
            reasons=batch.request.reasons,
            explanations=batch.request.explanations,
        )

    def _locality(self, model: str | None) -> str | None:
        entry = self.engine.catalog.models.get(model) if model else None
        return entry.locality.value if entry else None

    def resolve_version(self, as_of: str | None) -> int:
        current = self.index.version()
        if current is None:
            raise Unavailable(f"no index at {self.index.uri}: materialize index/chunks")
        if as_of is None:
            return current
        if as_of.isdigit():
            version = int(as_of)
            if not 1 <= version <= current:
                raise InvalidRequest(f"as_of: index version {version} does not exist (1..{current})", field="as_of")
            return version
        try:
            moment = _aware(as_of)
        except ValueError:
            raise InvalidRequest(f"as_of: {as_of!r} is neither an index version nor an ISO 8601 time",
                                 field="as_of") from None  # fmt: skip
        earlier = [v for v in self.index.versions() if _aware(v["timestamp"]) <= moment]
        if not earlier:
            raise InvalidRequest(f"as_of: the index did not exist yet at {moment.isoformat()}", field="as_of")
        return int(max(earlier, key=lambda v: v["version"])["version"])

    def allowed_classes(self, ctx: RequestContext, version: int) -> tuple[list[str], list[Withheld]]:
        """The class keys this request may see (the policy over the index's finite set of classes, cached), and
        what the policy withholds, per dataset, with its reasons. Both are query-independent: they say what the
        policy excludes, never whether anything excluded would have matched."""
        revision = self.engine.revision
        key = (ctx, revision, version)
        with self._lock:
            cached = self._prefilters.get(key)
        if cached is not None:
            return cached
        classes = self.index.classes(version=version)
        batch = self.engine.decide(ctx, classes)
        if any(d.reasons == [POLICY_ENGINE_UNAVAILABLE] for d in batch.resources):
            raise Unavailable("the policy engine cannot decide the prefilter", reasons=[POLICY_ENGINE_UNAVAILABLE])
        allowed = [class_key(r) for r, d in zip(classes, batch.resources, strict=True) if d.allow]
        denied: dict[str, tuple[set[str], dict[str, str]]] = {}
        for resource, decision in zip(classes, batch.resources, strict=True):
            if not decision.allow:
                levels, reasons = denied.setdefault(resource.dataset, (set(), {}))
                levels.add(resource.classification)
                reasons.update(zip(decision.reasons, decision.explanations, strict=False))
        withheld = [
            Withheld(
                dataset=dataset,
                classifications=sorted(levels),
                reasons=sorted(reasons),
                explanations=[reasons[r] for r in sorted(reasons)],
            )
            for dataset, (levels, reasons) in sorted(denied.items())
        ]
        with self._lock:
            if len(self._prefilters) > 10_000:
                self._prefilters.clear()
            self._prefilters[key] = (allowed, withheld)
        return allowed, withheld

    def retrieve(self, agent: str, request: ContextRequest, timings: Timings, *, kind: str = "context") -> Retrieval:
        """Steps 2-7: decide, search, re-check, redact, collapse and pack. Logs only a refusal (403)."""
        ctx = RequestContext(agent, request.purpose, request.model)
        with timings.stage("policy"):
            batch = self._request_decision(ctx)
            if not batch.request.allow:
                raise self._refuse(ctx, batch, kind=kind)
            version = self.resolve_version(request.as_of)
            allowed, withheld = self.allowed_classes(ctx, version)
        moment = _as_of_time(request.as_of) or dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        if allowed:
            with timings.stage("embedding"):
                vector = self._embed(request.query)
            with timings.stage("search"):
                where = sql_in("class_key", allowed)
                stale = self.index.stale_ids(moment, version=version)
                if stale:
                    where = f"({where}) AND NOT ({sql_in('platinum_id', stale)})"
                rows = self.index.search(vector, where=where, k=request.top_k, version=version)
                # defence in depth: nothing past its freshness SLA leaves, whatever the filter said
                rows = [r for r in rows if r["fresh_until"] is None or _aware(r["fresh_until"]) >= moment]
        with timings.stage("policy"):
            resources = [resource_of(r) for r in rows]
            decided = self.engine.decide(ctx, resources)
        with timings.stage("assembly"):
            retrieval = Retrieval(ctx, version, f"dec_{uuid.uuid4().hex}", rows, resources, decided, withheld)
            self._assemble(retrieval, request.max_tokens)
        return retrieval

    def _embed(self, query: str) -> np.ndarray:
        """The query's vector, from a small LRU cache (a conversation re-retrieves its earlier turns)."""
        with self._lock:
            cached = self._vectors.get(query)
            if cached is not None:
                self._vectors.move_to_end(query)
                return cached
        vector: np.ndarray = self.embedder.encode([query])[0]
        with self._lock:
            self._vectors[query] = vector
            if len(self._vectors) > 4096:
                self._vectors.popitem(last=False)
        return vector

    def commit(self, retrieval: Retrieval, timings: Timings, *, kind: str = "context", **fields: Any) -> None:
        """Step 8: the decision record (plus any ``fields``, e.g. where the context is sent), fsync'd to the log.
        Nothing may be answered or forwarded before this returns."""
        r = retrieval
        alerts = [Alert(row["chunk_id"], d.reasons) for row, d in zip(r.rows, r.decided.resources, strict=True)
                  if not d.allow]  # fmt: skip
        served = {c.chunk_id for c in r.chunks}
        with timings.stage("log"):
            record = decision_record(
                r.decided,
                kind=kind,
                locality=self._locality(r.ctx.model),
                resources=r.resources,
                ids=[row["platinum_id"] for row in r.rows],
                lineage=[[row["gold_id"], row["silver_id"], row["bronze_id"]] for row in r.rows],
                served=[row["chunk_id"] in served for row in r.rows],
                alerts=[f"prefilter_let_through:{a.chunk_id}:{','.join(a.reasons)}" for a in alerts],
            )
            record.update(decision_id=r.decision_id, index_version=r.version, **fields,
                          withheld=[f"{w.dataset}:{','.join(w.reasons)}" for w in r.withheld])  # fmt: skip
            self.log.append(record)
        if alerts:
            with self._lock:
                self.alerts.extend(alerts)

    def context(self, agent: str, request: ContextRequest, timings: Timings) -> ContextResponse:
        retrieval = self.retrieve(agent, request, timings)
        self.commit(retrieval, timings, query_chars=len(request.query))
        return self.response(retrieval)

    def response(self, retrieval: Retrieval) -> ContextResponse:
        r = retrieval
        return ContextResponse(
            decision_id=r.decision_id,
            agent=r.ctx.agent,
            purpose=r.ctx.purpose or "",
            model=r.ctx.model or "",
            locality=self._locality(r.ctx.model) or "unregistered",
            policy_revision=r.decided.revision,
            index_version=r.version,
            embedding_model=EMBEDDING_MODEL,
            tokens=sum(c.tokens for c in r.chunks),
            chunks=r.chunks,
            near_duplicates=r.near_duplicates,
            over_budget=r.over_budget,
            withheld=r.withheld,
        )

    def _assemble(self, retrieval: Retrieval, max_tokens: int | None) -> None:
        candidates = []
        for row, decision in zip(retrieval.rows, retrieval.decided.resources, strict=True):
            if not decision.allow:
                continue
            types = decision.obligations.redact
            spans = [PiiSpan(s["type"], s["start"], s["end"]) for s in row["pii_spans"] or []]
            text = redact(row["text"], spans, types) if types else row["text"]
            counts: dict[str, int] = {}
            for span in spans:
                if span.type in types:
                    counts[span.type] = counts.get(span.type, 0) + 1
            candidates.append((row, decision, text, counts))
        # stable order: best score first, ties by chunk id
        candidates.sort(key=lambda c: (-round(c[0]["score"], 6), c[0]["chunk_id"]))
        kept: list[np.ndarray] = []
        distinct = []
        for candidate in candidates:
            vector = np.asarray(candidate[0]["vector"], dtype=np.float32)
            if kept and float(np.max(np.stack(kept) @ vector)) >= self.settings.near_duplicate_similarity:
                retrieval.near_duplicates += 1
                continue
            kept.append(vector)
            distinct.append(candidate)
        tokens = count_tokens([c[2] for c in distinct]) if distinct else []
        used = 0
        for (row, decision, text, counts), n in zip(distinct, tokens, strict=True):
            if max_tokens is not None and used + n > max_tokens:
                retrieval.over_budget += 1
                continue
            used += n
            retrieval.chunks.append(
                Chunk(
                    chunk_id=row["chunk_id"],
                    text=text,
                    score=round(row["score"], 6),
                    dataset=row["dataset"],
                    layer=row["layer"],
                    classification=row["classification"],
                    tokens=n,
                    redactions=[Redaction(type=t, count=c) for t, c in sorted(counts.items())],
                    label=decision.obligations.label,
                    receipt=Receipt(
                        source_uri=row["source_uri"],
                        source_sha256=row["source_sha256"],
                        bronze=Layered(id=row["bronze_id"], delta_version=row["bronze_version"]),
                        silver=Layered(id=row["silver_id"], delta_version=row["silver_version"]),
                        gold=Layered(id=row["gold_id"], delta_version=row["gold_version"]),
                        platinum=Layered(id=row["platinum_id"], delta_version=row["platinum_version"]),
                        dagster_run_id=row["run_id"],
                        embedding_model=row["embedding_model"],
                        index_version=retrieval.version,
                        policy_revision=retrieval.decided.revision,
                        decision_id=retrieval.decision_id,
                    ),
                )
            )


def _aware(value: Any) -> dt.datetime:
    """A datetime (or ISO 8601 text) with a time zone; naive means UTC."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _as_of_time(as_of: str | None) -> dt.datetime | None:
    return None if as_of is None or as_of.isdigit() else _aware(as_of)
