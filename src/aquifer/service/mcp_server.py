"""Aquifer as a Model Context Protocol server: the same governed decisions as ``/v1/context``, as MCP tools.

One :class:`mcp.server.mcpserver.MCPServer` (the official SDK) serves both transports: Streamable HTTP at ``/mcp`` in
the API's own process (:mod:`aquifer.service.mcp_http`) and stdio (``aquifer mcp``). Every call names its caller
afresh: the agent token (the HTTP request's bearer token, or ``AQUIFER_AGENT_TOKEN`` over stdio) and, when sent, the
user token (``X-Aquifer-User-Token``, or ``AQUIFER_USER_TOKEN`` / ``AQUIFER_USER_TOKEN_FILE``), verified exactly as
the REST API verifies them. The model the context reaches is the agent's registered default model (an MCP client is
the model host), so an agent registered for an external model gets only what that locality allows.

Tools: ``search_context`` (the governed chunks, numbered for citation, with receipts and what is withheld),
``get_lineage`` (refused like ``/v1/lineage``), ``list_sources`` (what this agent and user may read, per purpose, and
what is withheld and why) and ``explain`` (the policy's reasons for a chunk or a dataset). Resources: the catalog's
public metadata (``aquifer://catalog``) and each served chunk (``aquifer://chunk/<id>``), re-decided on every read.
Every call is a decision record with ``channel: mcp`` and the ``tool``; a refusal is a tool error carrying the
policy's reason codes and explanations, never an empty success.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from aquifer.audit import decision_record, request_record
from aquifer.catalog import Catalog
from aquifer.export import tracing
from aquifer.identity.user import User
from aquifer.ids import CHUNK_ID_PATTERN, IDENTIFIER_PATTERN
from aquifer.policy import RequestContext, Resource
from aquifer.service.deps import USER_TOKEN_HEADER
from aquifer.service.errors import InvalidRequest, NotFound, ServiceError, Unauthenticated
from aquifer.service.mcp_schemas import (
    CHANNEL,
    ClassDecision,
    ExplainResult,
    LineageResult,
    NumberedChunk,
    PurposeView,
    SearchResult,
    SourceInfo,
    SourcesResult,
)
from aquifer.service.metrics import Metrics, Timings
from aquifer.service.retrieval import Retriever
from aquifer.service.schemas import ContextRequest, ContextResponse

log = logging.getLogger("aquifer.mcp")

CATALOG_URI = "aquifer://catalog"
CHUNK_URI = "aquifer://chunk/{chunk_id}"
AGENT_TOKEN_ENV, USER_TOKEN_ENV, USER_TOKEN_FILE_ENV = (
    "AQUIFER_AGENT_TOKEN",
    "AQUIFER_USER_TOKEN",
    "AQUIFER_USER_TOKEN_FILE",
)
INSTRUCTIONS = (
    "Aquifer serves governed enterprise context. Call search_context with the question and the purpose you act "
    "for; cite each chunk you use as [n]. What the policy withholds is listed with reason codes: do not try to "
    "work around it. list_sources says what you may read; explain says why a chunk or dataset is (not) served."
)


@dataclass(frozen=True)
class Credentials:
    """The tokens one call carries: the agent's, and the user's (None: no user token sent)."""

    agent_token: str | None
    user_token: str | None = None


CredentialSource = Callable[["Context | None"], Credentials]
"""Where a call's credentials come from: the HTTP request's headers, or the stdio process's environment."""


def http_credentials(ctx: Context | None) -> Credentials:
    """The bearer token and ``X-Aquifer-User-Token`` of the HTTP request that carries this call."""
    headers = ctx.headers if ctx is not None else None
    if headers is None:
        return Credentials(None)
    auth = headers.get("authorization") or ""
    token = auth[7:] if auth[:7].lower() == "bearer " else None
    return Credentials(token, headers.get("x-aquifer-user-token"))


def env_credentials(environ: dict[str, str] | None = None) -> CredentialSource:
    """The credentials of ``aquifer mcp`` (stdio): ``AQUIFER_AGENT_TOKEN``, and ``AQUIFER_USER_TOKEN`` or
    ``AQUIFER_USER_TOKEN_FILE`` (read on every call, so a refresher can replace a short-lived user token)."""
    env = dict(os.environ if environ is None else environ)

    def source(_: Context | None) -> Credentials:
        user = env.get(USER_TOKEN_ENV)
        path = env.get(USER_TOKEN_FILE_ENV)
        if user is None and path:
            try:
                user = Path(path).read_text().strip()
            except OSError as exc:
                raise Unauthenticated(f"{USER_TOKEN_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
        return Credentials(env.get(AGENT_TOKEN_ENV), user)

    return source


# -- the server ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    agent: str
    user: User | None


class Governed:
    """The tools' logic over one :class:`Retriever`; each method is one MCP call (its ``tool`` name logged)."""

    def __init__(self, retriever: Callable[[], Retriever], metrics: Metrics, credentials: CredentialSource) -> None:
        self._retriever, self.metrics, self.credentials = retriever, metrics, credentials

    @property
    def retriever(self) -> Retriever:
        return self._retriever()

    def caller(self, ctx: Context | None) -> Caller:
        creds = self.credentials(ctx)
        retriever = self.retriever
        agent = retriever.authenticate(creds.agent_token)
        return Caller(agent, retriever.identify(creds.user_token))

    def _model(self, agent: str) -> str:
        return self.retriever.engine.catalog.agents[agent].default_model

    def _purpose(self, agent: str, purpose: str | None) -> str:
        return purpose or self.retriever.engine.catalog.agents[agent].purposes[0]

    @staticmethod
    def _fields(tool: str, **more: Any) -> dict[str, Any]:
        return {"channel": CHANNEL, "tool": tool} | more

    # -- tools ---------------------------------------------------------------------------------------------------

    def search_context(
        self, caller: Caller, query: str, purpose: str, top_k: int, max_tokens: int | None, as_of: str | None
    ) -> SearchResult:
        try:
            request = ContextRequest(
                query=query,
                purpose=purpose,
                model=self._model(caller.agent),
                top_k=top_k,
                max_tokens=max_tokens,
                as_of=as_of,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(f"{where}: {first['msg']}", field=where) from None
        timings = Timings()
        answer = self.retriever.context(
            caller.agent, request, timings, user=caller.user, fields=self._fields("search_context")
        )
        self.metrics.observe_stages(timings)
        self.metrics.chunks.labels("allow", "").inc(len(answer.chunks))
        return numbered(answer)

    def get_lineage(self, caller: Caller, chunk_id: str, purpose: str | None) -> LineageResult:
        found = self.retriever.lineage(
            caller.agent,
            chunk_id,
            purpose=purpose,
            model=self._model(caller.agent),
            user=caller.user,
            fields=self._fields("get_lineage"),
        )
        return LineageResult(**found)

    def list_sources(self, caller: Caller, purpose: str | None) -> SourcesResult:
        r = self.retriever
        catalog = r.engine.catalog
        agent, model = catalog.agents[caller.agent], self._model(caller.agent)
        purposes = [purpose] if purpose else list(agent.purposes)
        version = r.resolve_version(None)
        classes = {c.key: c for c in r.index.classes(version=version)}
        views, revision = [], r.engine.revision
        for p in purposes:
            ctx = RequestContext(caller.agent, p, model, action="read_context", user=caller.user)
            batch = r.engine.decide(ctx)
            r._raise_if_undecided(batch.request)
            revision = batch.revision
            if not batch.request.allow:
                views.append(
                    PurposeView(
                        purpose=p,
                        allowed=False,
                        reasons=batch.request.reasons,
                        explanations=batch.request.explanations,
                    )
                )
                continue
            allowed, withheld = r.allowed_classes(ctx, version)
            readable = sorted({classes[k].dataset for k in allowed if k in classes})
            views.append(PurposeView(purpose=p, allowed=True, readable=readable, withheld=withheld))
        r.log.append(
            request_record(
                kind="list_sources",
                agent=caller.agent,
                purpose=purpose,
                model=model,
                locality=r._locality(model),
                reasons=[],
                revision=revision,
                user=caller.user.ref if caller.user else None,
                user_groups=list(caller.user.groups) if caller.user else None,
                index_version=version,
                withheld=[f"{v.purpose}/{w.dataset}:{','.join(w.reasons)}" for v in views for w in v.withheld]
                + [f"{v.purpose}:{','.join(v.reasons)}" for v in views if not v.allowed],
                **self._fields("list_sources"),
            )
        )
        return SourcesResult(
            agent=caller.agent,
            user=caller.user.ref if caller.user else None,
            model=model,
            locality=r._locality(model) or "unregistered",
            policy_revision=revision,
            index_version=version,
            purposes=views,
            sources=source_infos(catalog),
        )

    def explain(self, caller: Caller, chunk_id: str | None, dataset: str | None, purpose: str | None) -> ExplainResult:
        if (chunk_id is None) == (dataset is None):
            raise InvalidRequest("chunk_id, dataset: give exactly one of them", field="chunk_id")
        r = self.retriever
        catalog = r.engine.catalog
        model, purpose = self._model(caller.agent), self._purpose(caller.agent, purpose)
        ctx = RequestContext(caller.agent, purpose, model, action="read_context", user=caller.user)
        fields = self._fields("explain", ref=chunk_id or dataset)
        r.authorize(ctx, kind="explain", **fields)
        row: dict[str, Any] | None = None
        if chunk_id is not None:
            row = r.indexed_row(chunk_id)
            resources = [Resource.from_row(row)] if row else []
            ids = [str(row["platinum_id"])] if row else []
        else:
            if dataset not in catalog.sources:
                raise InvalidRequest(f"dataset: {dataset!r} is not a source of the catalog", field="dataset")
            version = r.resolve_version(None)
            resources = [c for c in r.index.classes(version=version) if c.dataset == dataset]
            ids = [c.key for c in resources]
        batch = r.engine.decide(ctx, resources)
        for decision in batch.resources:
            r._raise_if_undecided(decision)
        record = decision_record(batch, kind="explain", locality=r._locality(model), resources=resources, ids=ids)
        r.log.append(record | fields)
        if chunk_id is not None and (row is None or not batch.resources[0].allow):
            # as /v1/lineage: the same answer whether the chunk is unknown or withheld (explain a dataset instead)
            raise NotFound(
                f"no chunk {chunk_id} that agent {caller.agent} may read; explain(dataset=...) says what the policy "
                "withholds from a dataset, and why"
            )
        decisions = [
            ClassDecision(
                classification=res.classification,
                layer=res.layer,
                pii_types=list(res.pii_types),
                untrusted=res.untrusted,
                allow=d.allow,
                reasons=d.reasons,
                explanations=d.explanations,
                redact=d.obligations.redact if d.allow else [],
                label=d.obligations.label if d.allow else None,
            )
            for res, d in zip(resources, batch.resources, strict=True)
        ]
        name = row["dataset"] if row is not None else str(dataset)
        allowed = sum(d.allow for d in decisions)
        summary = (
            f"agent {caller.agent} may read this chunk of {name} for {purpose}"
            + (f", with {', '.join(decisions[0].redact)} redacted" if decisions[0].redact else "")
            if row is not None
            else f"{allowed} of {len(decisions)} classes of {name} readable by agent {caller.agent} for {purpose}"
            + (" (no chunks of it are indexed)" if not decisions else "")
        )
        return ExplainResult(
            agent=caller.agent,
            user=caller.user.ref if caller.user else None,
            purpose=purpose,
            model=model,
            policy_revision=batch.revision,
            chunk_id=row["chunk_id"] if row is not None else None,
            dataset=name,
            decisions=decisions,
            summary=summary,
        )

    # -- resources -----------------------------------------------------------------------------------------------

    def read_chunk(self, caller: Caller, chunk_id: str, purpose: str | None) -> SearchResult:
        """A chunk served earlier, decided again now (:meth:`Retriever.reread`)."""
        model, purpose = self._model(caller.agent), self._purpose(caller.agent, purpose)
        ctx = RequestContext(caller.agent, purpose, model, action="read_context", user=caller.user)
        fields = self._fields("read_chunk", ref=chunk_id)
        answer = self.retriever.reread(ctx, chunk_id, Timings(), fields=fields)
        if not answer.chunks:
            raise NotFound(f"no chunk {chunk_id} that agent {caller.agent} may read now")
        return numbered(answer, tool="read_chunk")

    def catalog(self) -> dict[str, Any]:
        """The catalog's public metadata: sources, models and trusted issuers (no agents, no credentials). Over HTTP
        only an authenticated request reaches it; ``aquifer mcp`` checks its token when it starts."""
        catalog = self.retriever.engine.catalog
        return {
            "sources": [s.model_dump(mode="json") for s in source_infos(catalog)],
            "models": [
                {"id": m.id, "locality": m.locality.value, "max_classification": m.max_classification.value}
                for m in sorted(catalog.models.values(), key=lambda m: m.id)
            ],
            "issuers": [{"id": i.id, "issuer": i.issuer} for i in catalog.identity.issuers],
        }


def source_infos(catalog: Catalog) -> list[SourceInfo]:
    """What the catalog says of each source, publicly."""
    return [
        SourceInfo(
            dataset=s.id,
            description=s.description,
            owner=s.owner.team,
            classification=s.classification.value,
            allowed_purposes=list(s.allowed_purposes),
        )
        for s in sorted(catalog.sources.values(), key=lambda s: s.id)
    ]


def numbered(answer: ContextResponse, *, tool: str = "search_context") -> SearchResult:
    chunks = [
        NumberedChunk(**c.model_dump(), n=n, resource_uri=f"aquifer://chunk/{c.chunk_id}")
        for n, c in enumerate(answer.chunks, 1)
    ]
    return SearchResult(**answer.model_dump(exclude={"chunks"}), chunks=chunks, tool=tool)


def as_text(result: SearchResult) -> str:
    """The answer as a model reads it: numbered sources, then what is withheld."""
    lines = [
        f"Governed context for {result.agent}"
        + (f" acting for {result.user}" if result.user else "")
        + f" (purpose {result.purpose}, model {result.model}, {result.locality}; decision {result.decision_id})."
    ]
    if not result.chunks and not (result.over_budget or result.near_duplicates):
        lines.append("No chunk this agent may read matched.")
    for c in result.chunks:
        label = f", {c.label}" if c.label else ""
        lines.append(f"\n[{c.n}] {c.dataset} ({c.classification}{label}) {c.chunk_id}\n{c.text}")
    if result.over_budget:
        lines.append(f"\n{result.over_budget} more allowed chunk(s) left out to stay within max_tokens.")
    if result.near_duplicates:
        lines.append(f"\n{result.near_duplicates} allowed chunk(s) left out as near-duplicates of one served.")
    for w in result.withheld:
        lines.append(f"\nWithheld by policy: {w.dataset} ({', '.join(w.classifications)}): {'; '.join(w.explanations)}")
    return "\n".join(lines)


def error_result(exc: ServiceError) -> CallToolResult:
    """A refusal or failure as an MCP tool error: the text for the model, the reasons as structured content."""
    body = {"error": exc.error, "detail": exc.detail, "reasons": exc.reasons, "explanations": exc.explanations}
    if exc.field:
        body["field"] = exc.field
    text = f"{exc.error}: {exc.detail}" + (f" (reasons: {', '.join(exc.reasons)})" if exc.reasons else "")
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body, is_error=True)


Query = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S", description="The question to ground")]
Purpose = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="The purpose the agent acts for")]
OptionalPurpose = Annotated[
    str | None, Field(pattern=IDENTIFIER_PATTERN, description="The purpose (default: the agent's first)")
]
ChunkId = Annotated[str, Field(pattern=CHUNK_ID_PATTERN, description="A chunk id (gld_...) or platinum id")]


def build_server(
    retriever: Callable[[], Retriever],
    metrics: Metrics,
    credentials: CredentialSource,
    *,
    user_token_name: str = USER_TOKEN_HEADER,
) -> MCPServer[Any]:
    """The MCP server over a retriever (a callable: the service creates it in its lifespan, after this).
    ``user_token_name`` is where this transport's caller puts the user token (refusals name it)."""
    governed = Governed(retriever, metrics, credentials)

    def refused(exc: ServiceError) -> ServiceError:
        if user_token_name != USER_TOKEN_HEADER:
            exc.detail = exc.detail.replace(USER_TOKEN_HEADER, user_token_name)
        return exc

    def tool(fn: Callable[..., Any]) -> Callable[..., Any]:
        """A read-only tool, described by its docstring without the source's indentation."""
        hints = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
        return server.tool(description=inspect.cleandoc(fn.__doc__ or ""), annotations=hints)(fn)

    server: MCPServer[Any] = MCPServer(
        "aquifer", title="Aquifer governed context", version="0.1.0", instructions=INSTRUCTIONS, log_level="WARNING"
    )

    def run(
        name: str, ctx: Context | None, call: Callable[[Caller], BaseModel], text: Callable[[Any], str]
    ) -> CallToolResult:
        try:
            with tracing.within(ctx):  # the stage spans are children of this call's /mcp span
                result = call(governed.caller(ctx))
        except ServiceError as exc:
            metrics.mcp.labels(name, exc.error).inc()
            return error_result(refused(exc))
        except Exception:
            log.exception("MCP tool %s failed", name)
            metrics.mcp.labels(name, "internal").inc()
            return error_result(ServiceError("internal error; see the service log"))
        metrics.mcp.labels(name, "ok").inc()
        data = result.model_dump(mode="json")
        return CallToolResult(content=[TextContent(type="text", text=text(result))], structured_content=data)

    def as_json(result: BaseModel) -> str:
        return json.dumps(result.model_dump(mode="json"), indent=1, ensure_ascii=False)

    @tool
    def search_context(
        query: Query,
        purpose: Purpose,
        ctx: Context,
        top_k: Annotated[int, Field(ge=1, le=50, description="Chunks to return at most")] = 8,
        max_tokens: Annotated[int | None, Field(ge=1, le=100_000, description="Token budget for all texts")] = None,
        as_of: Annotated[
            str | None, Field(min_length=1, max_length=64, description="Replay: an index version or ISO 8601 time")
        ] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Governed context for a question: only the chunks this agent (and the user it acts for) may see for this
        purpose through its registered model, redacted as the policy requires, numbered [n] for citation, each with
        its provenance receipt; plus what the policy withholds, per dataset, with reason codes."""
        return run(
            "search_context",
            ctx,
            lambda c: governed.search_context(c, query, purpose, top_k, max_tokens, as_of),
            as_text,
        )

    @tool
    def get_lineage(
        chunk_id: ChunkId, ctx: Context, purpose: OptionalPurpose = None
    ) -> Annotated[CallToolResult, LineageResult]:
        """The lineage of a chunk this agent may read, back to its landing file (refused, as unknown, for chunks it
        may not read)."""
        return run("get_lineage", ctx, lambda c: governed.get_lineage(c, chunk_id, purpose), as_json)

    @tool
    def list_sources(ctx: Context, purpose: OptionalPurpose = None) -> Annotated[CallToolResult, SourcesResult]:
        """What this agent (and user) may read, per purpose, and what the policy withholds and why; with the
        catalog's description of every source."""
        return run("list_sources", ctx, lambda c: governed.list_sources(c, purpose), as_json)

    @tool
    def explain(
        ctx: Context,
        chunk_id: Annotated[str | None, Field(pattern=CHUNK_ID_PATTERN, description="A chunk id")] = None,
        dataset: Annotated[str | None, Field(pattern=IDENTIFIER_PATTERN, description="A catalog source id")] = None,
        purpose: OptionalPurpose = None,
    ) -> Annotated[CallToolResult, ExplainResult]:
        """The policy's reasons, in words: for a chunk this agent may read (and what is redacted), or for each
        class of a dataset (why it is or is not served). Give exactly one of chunk_id and dataset."""
        return run("explain", ctx, lambda c: governed.explain(c, chunk_id, dataset, purpose), lambda r: r.summary)

    @server.resource(CATALOG_URI, name="catalog", mime_type="application/json")
    def catalog() -> str:
        """The catalog's public metadata: sources (owner, classification, purposes), models and their locality,
        trusted user-token issuers."""
        metrics.mcp.labels("catalog", "ok").inc()
        return json.dumps(governed.catalog(), indent=1)

    @server.resource(CHUNK_URI + "{?purpose}", name="chunk", mime_type="application/json")
    def chunk(chunk_id: str, ctx: Context, purpose: str | None = None) -> str:
        """A chunk served earlier, decided again on every read: refused once the policy no longer allows it."""
        for name, value, pattern in (
            ("chunk_id", chunk_id, CHUNK_ID_PATTERN),
            ("purpose", purpose, IDENTIFIER_PATTERN),
        ):
            if value is not None and not _matches(pattern, value):
                raise MCPError(code=INVALID_PARAMS, message=f"{name}: not a valid {name}", data={"field": name})
        result = read("read_chunk", ctx, lambda c: governed.read_chunk(c, chunk_id, purpose))
        return json.dumps(result.model_dump(mode="json"), indent=1, ensure_ascii=False)

    def read(name: str, ctx: Context, call: Callable[[Caller], Any]) -> Any:
        try:
            with tracing.within(ctx):
                result = call(governed.caller(ctx))
        except ServiceError as exc:
            metrics.mcp.labels(name, exc.error).inc()
            exc = refused(exc)
            code = INVALID_PARAMS if isinstance(exc, InvalidRequest | NotFound) else _ERROR_CODES.get(exc.error, -32603)
            data = {"error": exc.error, "reasons": exc.reasons, "explanations": exc.explanations}
            raise MCPError(code=code, message=f"{exc.error}: {exc.detail}", data=data) from None
        metrics.mcp.labels(name, "ok").inc()
        return result

    return server


_ERROR_CODES = {"unauthenticated": -32001, "forbidden": -32003, "unavailable": -32603}
"""JSON-RPC codes of a refused resource read (server-defined range; not found and invalid are -32602)."""


def _matches(pattern: str, value: str) -> bool:
    import re

    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is not None
