"""Governed retrieval, independent of HTTP: authenticate, decide, prefilter, search, re-check, redact, pack, log.

The steps of ``POST /v1/context`` in order, each timed as a stage (auth, policy, embedding, search, assembly, log):

1. the token names an agent (:class:`aquifer.credentials.Authenticator`), and the user token, when one is sent,
   the user it acts for (:class:`aquifer.identity.verify.UserVerifier`);
2. the request-level decision (purpose, model, user) - refused before any search;
3. the prefilter: the policy evaluated once over every resource class present in the index, cached per (agent,
   purpose, model, user, policy revision, index version), becomes the store's filter on ``class_key``, together
   with the request's principals against each document's ACL, so the search returns top_k allowed chunks, never
   fewer because of filtering;
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
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from aquifer.audit import DecisionLog, decision_record, request_record
from aquifer.audit.prove import load_decisions
from aquifer.catalog import Catalog, Model
from aquifer.codes import ANSWERED_401
from aquifer.credentials import AuthenticationError, Authenticator, CredentialStore
from aquifer.embedding import Embedder
from aquifer.identity.user import User
from aquifer.index import LanceDBStore, VectorStore
from aquifer.lake import Lake
from aquifer.lineage import LineageError, trace
from aquifer.policy import (
    INVALID_INPUT,
    POLICY_ENGINE_UNAVAILABLE,
    BatchDecision,
    Decision,
    PolicyEngine,
    RequestContext,
    Resource,
)
from aquifer.service.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated, Unavailable
from aquifer.service.metrics import Timings
from aquifer.service.packing import Stamp, pack
from aquifer.service.schemas import (
    Chunk,
    ContextRequest,
    ContextResponse,
    Withheld,
)
from aquifer.settings import Settings
from aquifer.tokenizer import EMBEDDING_MODEL

ACTIONS_OF_KINDS = {"context": "read_context", "chat": "chat"}

"""The policy action (``input.action``) a serving kind of decision record asks for."""


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
        return cls(
            last.ctx,
            last.version,
            last.decision_id,
            rows,
            resources,
            decided,
            last.withheld,
            stamped,
            sum(p.near_duplicates for p in parts),
            sum(p.over_budget for p in parts),
        )


class Retriever:
    """Everything ``/v1/context`` needs, created once (the service's lifespan) and shared by requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: PolicyEngine | None = None,
        index: VectorStore | None = None,
        embedder: Embedder | None = None,
        log: DecisionLog | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or PolicyEngine.from_settings(settings)
        self.index: VectorStore = index or LanceDBStore.from_settings(settings)
        self.embedder = embedder or Embedder()
        self.log = log or DecisionLog(settings.decisions_dir, segment_bytes=settings.decision_log_segment_bytes)
        self.authenticator = authenticator or Authenticator(
            CredentialStore(settings.credentials_file), production=settings.environment == "production"
        )
        self._prefilters: dict[tuple[RequestContext, str, int], tuple[list[str], list[Withheld]]] = {}
        self._verifier: Any = None  # aquifer.identity.verify.UserVerifier, built for the catalog's identity
        self._verifier_identity: Any = None
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

    def identify(self, token: str | None) -> User | None:
        """The user a user token names (None without one), verified against the catalog's trusted issuers. A bad
        token is :class:`Unauthenticated` with its reason code; keys that cannot be had are :class:`Unavailable`
        (fail closed)."""
        if token is None:
            return None
        from aquifer.identity.verify import IdentityUnavailable, UserTokenError, UserVerifier

        identity = self.engine.catalog.identity
        with self._lock:
            if self._verifier is None or self._verifier_identity != identity:
                production = self.settings.environment == "production"
                self._verifier, self._verifier_identity = UserVerifier(identity, production=production), identity
            verifier = self._verifier
        try:
            return verifier.verify(token)  # type: ignore[no-any-return]
        except UserTokenError as exc:
            raise Unauthenticated(f"X-Aquifer-User-Token: {exc}", reasons=[exc.code]) from None
        except IdentityUnavailable as exc:
            raise Unavailable(f"X-Aquifer-User-Token cannot be verified: {exc}", reasons=[exc.code]) from None

    def authorize(self, ctx: RequestContext, *, kind: str, **fields: Any) -> BatchDecision:
        """The policy's request-level decision for ``ctx.action``. A refusal is logged (``kind``, plus ``fields``)
        and raised as :class:`Forbidden` with the policy's reasons (:class:`Unauthenticated` when what is missing
        is a user token); no decision at all is :class:`Unavailable`."""
        batch = self.engine.decide(ctx)
        self._raise_if_undecided(batch.request)
        if not batch.request.allow:
            self.log.append(decision_record(batch, kind=kind, locality=self._locality(ctx.model)) | fields)
            if ANSWERED_401 & set(batch.request.reasons):
                raise Unauthenticated(
                    f"agent {ctx.agent} acts on behalf of a user: send the user's token in X-Aquifer-User-Token",
                    reasons=batch.request.reasons,
                    explanations=batch.request.explanations,
                )
            raise Forbidden(
                f"agent {ctx.agent} may not {ctx.action.replace('_', ' ')}"
                + (f" for purpose {ctx.purpose}" if ctx.purpose else "")
                + (f" with model {ctx.model}" if ctx.model else "")
                + ": "
                + "; ".join(batch.request.explanations or batch.request.reasons),
                reasons=batch.request.reasons,
                explanations=batch.request.explanations,
            )
        return batch

    @staticmethod
    def _raise_if_undecided(decision: Decision) -> None:
        # An id that is not an identifier is refused by the routes first (422): reaching here, it is undecidable.
        if decision.reasons in ([POLICY_ENGINE_UNAVAILABLE], [INVALID_INPUT]):
            why = "; ".join(decision.explanations)
            raise Unavailable(f"the policy engine cannot decide: {why}", reasons=list(decision.reasons))

    def _locality(self, model: str | None) -> str | None:
        entry = self.engine.catalog.models.get(model) if model else None
        return entry.locality.value if entry else None

    def resolve_version(self, as_of: str | None) -> int:
        current = self.index.version()
        if current is None:
            raise Unavailable(f"no index at {self.index.uri}: materialize index/chunks")
        if as_of is None:
            return current
        if _is_version(as_of):
            version = int(as_of)
            if not 1 <= version <= current:
                raise InvalidRequest(f"as_of: index version {version} does not exist (1..{current})", field="as_of")
            return version
        try:
            moment = _aware(as_of)
        except ValueError:
            msg = "as_of: neither an index version (an integer) nor an ISO 8601 time"
            raise InvalidRequest(msg, field="as_of") from None
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
        allowed = [r.key for r, d in zip(classes, batch.resources, strict=True) if d.allow]
        # (document ACLs are not withheld per dataset: the prefilter admits documents by ctx.principals)
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
            if len(self._prefilters) >= 10_000:  # the oldest prefilter first (one per user, purpose, model)
                del self._prefilters[next(iter(self._prefilters))]
            self._prefilters[key] = (allowed, withheld)
        return allowed, withheld

    def retrieve(
        self,
        agent: str,
        request: ContextRequest,
        timings: Timings,
        *,
        kind: str = "context",
        user: User | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Retrieval:
        """Steps 2-7: decide, search, re-check, redact, collapse and pack. Logs only a refusal (401/403), with
        ``fields`` (e.g. the channel and tool of an MCP call)."""
        ctx = RequestContext(agent, request.purpose, request.model, action=ACTIONS_OF_KINDS[kind], user=user)
        with timings.stage("policy"):
            self.authorize(ctx, kind=kind, **(fields or {}))
            version = self.resolve_version(request.as_of)
            allowed, withheld = self.allowed_classes(ctx, version)
        moment = _as_of_time(request.as_of) or dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        if allowed:
            with timings.stage("embedding"):
                vector = self._embed(request.query)
            with timings.stage("search"):
                stale = self.index.stale_ids(moment, version=version)
                rows = self.index.search(
                    vector,
                    classes=allowed,
                    principals=ctx.principals,
                    exclude_ids=stale,
                    k=request.top_k,
                    version=version,
                )
                rows = _fresh(rows, moment)  # defence in depth: nothing past its freshness SLA leaves
        return self._assemble(ctx, version, rows, withheld, timings, max_tokens=request.max_tokens)

    def _assemble(
        self,
        ctx: RequestContext,
        version: int,
        rows: list[dict[str, Any]],
        withheld: list[Withheld],
        timings: Timings,
        *,
        max_tokens: int | None,
        collapse: bool = True,
    ) -> Retrieval:
        """Steps 5-7 over the rows found: the per-chunk decisions, redaction, collapse, packing, the receipts."""
        with timings.stage("policy"):
            resources = [Resource.from_row(r) for r in rows]
            decided = self.engine.decide(ctx, resources)
        with timings.stage("assembly"):
            retrieval = Retrieval(ctx, version, f"dec_{uuid.uuid4().hex}", rows, resources, decided, withheld)
            stamp = Stamp(version, decided.revision, retrieval.decision_id)
            similarity = self.settings.near_duplicate_similarity if collapse else 2.0
            packed = pack(rows, decided.resources, stamp, max_tokens=max_tokens, similarity=similarity)
            by_id = {row["chunk_id"]: res for row, res in zip(rows, resources, strict=True)}
            catalog, user_ref = self.engine.catalog, ctx.user.ref if ctx.user else None
            retrieval.chunks = [
                c.model_copy(
                    update={
                        "receipt": c.receipt.model_copy(
                            update={"user": user_ref, "admitted_by": admitted_by(ctx, by_id[c.chunk_id], catalog)}
                        )
                    }
                )
                for c in packed.chunks
            ]
            retrieval.near_duplicates, retrieval.over_budget = packed.near_duplicates, packed.over_budget
        return retrieval

    def reread(
        self, ctx: RequestContext, chunk_id: str, timings: Timings, *, fields: dict[str, Any] | None = None
    ) -> ContextResponse:
        """One chunk by id (served earlier), decided again now exactly as a search result would be: the policy, the
        user's groups, the document's ACL and its freshness as they are; redacted, logged as a serving decision
        (kind ``context``, plus ``fields``). No chunk in the answer when it is unknown or no longer allowed."""
        with timings.stage("policy"):
            self.authorize(ctx, kind="context", **(fields or {}))
            version = self.resolve_version(None)
        row = self.indexed_row(chunk_id)
        rows = _fresh([row | {"score": 1.0}] if row is not None else [], dt.datetime.now(dt.UTC))
        retrieval = self._assemble(ctx, version, rows, [], timings, max_tokens=None, collapse=False)
        self.commit(retrieval, timings, **(fields or {}))
        return self.response(retrieval)

    # -- the other actions: lineage, decision records, the model list ---------------------------------------------

    def indexed_row(self, chunk_id: str) -> dict[str, Any] | None:
        """The index row of a chunk id (or of its platinum id), or None."""
        if not self.index.exists():
            raise Unavailable("no index: materialize index/chunks")
        return self.index.row(chunk_id)

    def lineage(
        self,
        agent: str,
        chunk_id: str,
        *,
        purpose: str | None,
        model: str | None,
        user: User | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The lineage of a chunk this agent (for this user) may read for this purpose and model (default: its
        first purpose and its default model), back to its landing file. Logged (kind ``lineage``, plus ``fields``)
        whatever the answer."""
        entry = self.engine.catalog.agents[agent]
        purpose, model = purpose or entry.purposes[0], model or entry.default_model
        ctx = RequestContext(agent, purpose, model, action="read_lineage", user=user)
        fields = {"ref": chunk_id} | (fields or {})
        self.authorize(ctx, kind="lineage", **fields)
        row = self.indexed_row(chunk_id)
        resources = [Resource.from_row(row)] if row else []
        batch = self.engine.decide(ctx, resources)
        for decision in batch.resources:
            self._raise_if_undecided(decision)
        ids = [row["platinum_id"]] if row else []
        lineage = [[row["gold_id"], row["silver_id"], row["bronze_id"]]] if row else []
        locality = self._locality(ctx.model)
        record = decision_record(
            batch,
            kind="lineage",
            locality=locality,
            resources=resources,
            ids=ids,
            lineage=lineage,
            documents=[row.get("doc_id")] if row else [],
        )
        self.log.append(record | fields)
        if row is None or not batch.resources[0].allow:
            # the same answer whether the chunk is unknown or withheld: a denial leaves no trace
            raise NotFound(f"no chunk {chunk_id} that agent {agent} may read")
        try:
            nodes = trace(Lake.from_settings(self.settings), [row["platinum_id"]], sorted(self.engine.catalog.sources))
        except LineageError as exc:
            raise NotFound(str(exc)) from None
        return {"chunk_id": row["chunk_id"], "lineage": nodes[0].as_dict()}

    def decision(self, agent: str, decision_id: str, *, user: User | None = None) -> dict[str, Any]:
        """A decision record from the log, for agents (and users) the policy lets read them (``read_decisions``).
        Reading one is logged too (kind ``read_decisions``, ``ref`` the record read)."""
        ctx = RequestContext(agent, None, None, action="read_decisions", user=user)
        batch = self.authorize(ctx, kind="read_decisions", ref=decision_id)
        self.log.append(decision_record(batch, kind="read_decisions", locality=None) | {"ref": decision_id})
        found = (
            load_decisions(Lake.from_settings(self.settings), self.settings.decisions_dir)
            .filter(pl.col("decision_id") == decision_id)
            .collect()
        )
        if found.is_empty():
            raise NotFound(f"no decision {decision_id}")
        return found.row(0, named=True)

    def models(self, agent: str, *, user: User | None = None) -> list[Model]:
        """The registered models the policy lets this agent use (``list_models``, one decision per model), the
        agent's own preference order first. Logged once (kind ``list_models``), the models withheld and why in
        ``withheld``."""
        catalog = self.engine.catalog
        preferred = [m for m in catalog.agents[agent].models if m in catalog.models]
        listed, withheld, revision = [], [], None
        for model_id in [*preferred, *sorted(set(catalog.models) - set(preferred))]:
            batch = self.engine.decide(RequestContext(agent, None, model_id, action="list_models", user=user))
            self._raise_if_undecided(batch.request)
            revision = batch.revision
            if batch.request.allow:
                listed.append(catalog.models[model_id])
            else:
                withheld.append(f"model:{model_id}:{','.join(batch.request.reasons)}")
        record = request_record(
            kind="list_models",
            agent=agent,
            purpose=None,
            model=None,
            locality=None,
            reasons=[],
            revision=revision,
            user=user.ref if user else None,
        )
        self.log.append(record | {"withheld": withheld})
        return listed

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
        alerts = [
            Alert(row["chunk_id"], d.reasons) for row, d in zip(r.rows, r.decided.resources, strict=True) if not d.allow
        ]
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
                admitted_by=[admitted_by(r.ctx, resource, self.engine.catalog) for resource in r.resources],
                documents=[row.get("doc_id") for row in r.rows],
                alerts=[f"prefilter_let_through:{a.chunk_id}:{','.join(a.reasons)}" for a in alerts],
            )
            record.update(
                decision_id=r.decision_id,
                index_version=r.version,
                **fields,
                withheld=[f"{w.dataset}:{','.join(w.reasons)}" for w in r.withheld],
            )
            timings.logged(self.log.append(record), record)  # on the request's span, when traces are exported
        if alerts:
            with self._lock:
                self.alerts.extend(alerts)

    def context(
        self,
        agent: str,
        request: ContextRequest,
        timings: Timings,
        *,
        user: User | None = None,
        fields: dict[str, Any] | None = None,
    ) -> ContextResponse:
        """Steps 2-8 (``/v1/context``, the MCP tool ``search_context``); ``fields`` go into the decision record."""
        retrieval = self.retrieve(agent, request, timings, user=user, fields=fields)
        self.commit(retrieval, timings, query_chars=len(request.query), **(fields or {}))
        return self.response(retrieval)

    def response(self, retrieval: Retrieval) -> ContextResponse:
        r = retrieval
        return ContextResponse(
            decision_id=r.decision_id,
            agent=r.ctx.agent,
            user=r.ctx.user.ref if r.ctx.user else None,
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


def admitted_by(ctx: RequestContext, resource: Resource, catalog: Catalog) -> list[str]:
    """The request's principals that the resource's document ACL or its dataset's access list names: by which
    entries it was admitted (empty when neither restricts it). Bookkeeping for the record and the receipt: the
    policy decided, this says which entry it matched."""
    listed = set(resource.acl) if isinstance(resource.acl, tuple) else set()
    source = catalog.sources.get(resource.dataset)
    if source is not None and source.access is not None:
        listed |= set(source.access.principals())
    return sorted(set(ctx.principals) & listed)


def _fresh(rows: list[dict[str, Any]], moment: dt.datetime) -> list[dict[str, Any]]:
    """The rows within their freshness SLA at ``moment``."""
    return [r for r in rows if r["fresh_until"] is None or _aware(r["fresh_until"]) >= moment]


def _aware(value: Any) -> dt.datetime:
    """A datetime (or ISO 8601 text) with a time zone; naive means UTC."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _as_of_time(as_of: str | None) -> dt.datetime | None:
    return None if as_of is None or _is_version(as_of) else _aware(as_of)


def _is_version(as_of: str) -> bool:
    """An index version (ASCII digits: ``"²".isdigit()`` is true too, and ``int`` refuses it)."""
    return as_of.isascii() and as_of.isdigit()
