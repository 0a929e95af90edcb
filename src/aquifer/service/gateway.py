"""The governed gateway: OpenAI-compatible ``POST /v1/chat/completions`` in front of the registered models.

Any OpenAI client works unchanged: ``base_url`` is Aquifer's ``/v1``, the api key is the agent's Aquifer token, and
``model`` is a registered model id (``catalog/models``). For each call:

1. the agent is authenticated (the app's bearer dependency) and must declare a purpose (``X-Aquifer-Purpose`` or
   ``metadata.purpose``), else 400;
2. governed retrieval (:meth:`~aquifer.service.retrieval.Retriever.retrieve`) for each user turn, with the
   model's locality: the policy refuses an unregistered model or one this agent may not use (403), and lets
   through only chunks that model may receive;
3. the context becomes system blocks with numbered citations in a stable order (:func:`render_context`): the
   first turn's sources after the agent's system prompt, each later turn's new sources just before that turn
   (:func:`governed_messages`). The same chunks always render to the same bytes and earlier turns' blocks never
   move, so the prompt of turn n starts with the prompt of turn n-1 and a local model's prompt cache reuses it;
4. the decision record, naming the endpoint and the SHA-256 of the exact request body, is fsync'd *before* the
   request leaves; the request goes only to the model's registered endpoint, with the model's own key
   (``api_key_env``), never the agent's token;
5. the answer comes back with an ``aquifer`` member (:class:`~aquifer.service.schemas.ChatExtension`: citations
   with receipts, the decision id, what the policy withheld); an ``upstream`` record logs how the call ended (and,
   when traces are exported, a span ``aquifer.upstream``: :func:`aquifer.export.tracing.upstream`).

An unreachable endpoint or an error answer is a 502, no answer within the model's ``timeout_s`` a 504; once a
stream has started, the same errors arrive as an OpenAI error event (the official client raises ``APIError``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from aquifer.audit import request_record
from aquifer.catalog import Model
from aquifer.export import tracing
from aquifer.identity.user import User
from aquifer.ids import is_identifier
from aquifer.service.conversation import conversation, governed_messages, turn_queries
from aquifer.service.errors import InvalidRequest, Unavailable, UpstreamError, UpstreamTimeout, openai_body
from aquifer.service.metrics import Timings
from aquifer.service.retrieval import Retrieval, Retriever
from aquifer.service.schemas import ChatExtension, ChatRequest, Citation, ContextRequest
from aquifer.settings import Settings

PURPOSE_HEADER = "X-Aquifer-Purpose"


@dataclass
class Prepared:
    """A governed request, logged and ready to leave."""

    retrieval: Retrieval
    model: Model
    body: bytes
    extension: dict[str, Any]


class Gateway:
    """Created once per service (lifespan) over the service's :class:`Retriever`."""

    def __init__(
        self,
        retriever: Retriever,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        """``observe(model, outcome, seconds)`` is told how each upstream call ended (the service's metrics)."""
        self.retriever = retriever
        self.settings = settings
        self.observe = observe
        self.http = http or httpx.AsyncClient(limits=httpx.Limits(max_connections=64))

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- 1-4: govern, render, log (sync: runs in a worker thread) -------------------------------------------------

    def prepare(
        self,
        agent: str,
        request: ChatRequest,
        purpose_header: str | None,
        timings: Timings,
        user: User | None = None,
    ) -> Prepared:
        purpose = purpose_header or (request.metadata or {}).get("purpose")
        where = PURPOSE_HEADER if purpose_header else "metadata.purpose"
        if purpose and not is_identifier(purpose):
            msg = f"{where}: the purpose must be an identifier (lower-case letters, digits and _)"
            raise InvalidRequest(msg, field=where)
        if not purpose:
            self._log_refusal(agent, None, request.model, ["purpose_missing"], user)
            raise InvalidRequest(
                f"declare the purpose of this call: the {PURPOSE_HEADER} header or metadata.purpose "
                f"(agent {agent} may act for {self._purposes(agent)})",
                reasons=["purpose_missing"],
                field="metadata.purpose",
            )
        turns = turn_queries(request.messages)
        if not turns:
            self._log_refusal(agent, purpose, request.model, ["no_user_message"], user)
            raise InvalidRequest("messages: no user message with text to ground", field="messages")
        parts = [self._retrieve(agent, purpose, request.model, query, timings, user) for _, query in turns]
        retrieval, block, later = conversation(
            turns,
            parts,
            follow_up_tokens=self.settings.gateway_follow_up_tokens,
            conversation_tokens=self.settings.gateway_conversation_tokens,
        )
        model = self.retriever.engine.catalog.models.get(request.model)
        if model is None:  # the policy allowed it, so it was registered: the catalog changed meanwhile
            raise Unavailable(f"model {request.model} left the catalog while this request was decided; retry it")
        if model.api_key_env and not os.environ.get(model.api_key_env):
            self._log_refusal(agent, purpose, model.id, ["upstream_key_missing"], user)
            raise UpstreamError(
                f"model {model.id}: the environment variable {model.api_key_env} (its api_key_env) is not set, "
                "so its endpoint cannot be called",
                reasons=["upstream_key_missing"],
            )
        payload = request.model_dump(exclude={"metadata"}, exclude_none=True)
        messages = governed_messages(request.messages, block, later, follow_up=model.follow_up_context)
        payload.update(model=model.served_name, messages=messages)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self.retriever.commit(
            retrieval,
            timings,
            kind="chat",
            channel="gateway",
            query_chars=len(turns[-1][1]),
            upstream={
                "endpoint": model.endpoint,
                "served_name": model.served_name,
                "prompt_sha256": hashlib.sha256(body).hexdigest(),
            },
        )
        answer = self.retriever.response(retrieval)
        extension = ChatExtension(
            decision_id=answer.decision_id,
            agent=agent,
            user=answer.user,
            purpose=purpose,
            model=model.id,
            locality=answer.locality,
            policy_revision=answer.policy_revision,
            index_version=answer.index_version,
            context_tokens=answer.tokens,
            near_duplicates=answer.near_duplicates,
            over_budget=answer.over_budget,
            citations=[
                Citation(n=n, **c.model_dump(exclude={"text", "score"})) for n, c in enumerate(retrieval.chunks, 1)
            ],
            withheld=answer.withheld,
        )
        return Prepared(retrieval, model, body, extension.model_dump(mode="json"))

    def _retrieve(
        self, agent: str, purpose: str, model: str, query: str, timings: Timings, user: User | None
    ) -> Retrieval:
        try:
            request = ContextRequest(
                query=query,
                purpose=purpose,
                model=model,
                top_k=self.settings.gateway_top_k,
                max_tokens=self.settings.gateway_context_tokens,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "metadata.purpose" if first["loc"][0] == "purpose" else ".".join(map(str, first["loc"]))
            raise InvalidRequest(f"{where}: {first['msg']}", field=where) from None
        return self.retriever.retrieve(agent, request, timings, kind="chat", user=user, fields={"channel": "gateway"})

    # -- 5: forward --------------------------------------------------------------------------------------------

    async def complete(self, prepared: Prepared) -> dict[str, Any]:
        """A non-streaming answer, with the ``aquifer`` member."""
        start = time.perf_counter()
        try:
            response = await self.http.post(**self._request(prepared))
        except httpx.HTTPError as exc:
            raise self._failed(prepared, exc, start) from None
        if response.status_code >= 400:
            raise self._rejected(prepared, response.status_code, response.text, start)
        try:
            data = response.json()
            if not isinstance(data, dict) or "choices" not in data:
                raise ValueError("no choices")
        except ValueError:
            raise self._rejected(
                prepared, response.status_code, "not a chat completion: " + response.text, start
            ) from None
        data["model"] = prepared.model.id
        data["aquifer"] = prepared.extension
        self._log_outcome(prepared, "ok", response.status_code, start, usage=data.get("usage"))
        return data

    async def open_stream(self, prepared: Prepared) -> AsyncIterator[bytes]:
        """Starts the upstream stream (so a refusal or an unreachable endpoint is still an HTTP status) and returns
        the server-sent events to relay: the first chunk carries the ``aquifer`` member."""
        start = time.perf_counter()
        request = self.http.build_request("POST", **self._request(prepared))
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._failed(prepared, exc, start) from None
        if response.status_code >= 400:
            text = (await response.aread()).decode(errors="replace")
            await response.aclose()
            raise self._rejected(prepared, response.status_code, text, start)
        return self._relay(prepared, response, start)

    async def _relay(self, prepared: Prepared, response: httpx.Response, start: float) -> AsyncIterator[bytes]:
        usage: dict[str, Any] | None = None
        logged = False

        def finish(outcome: str, detail: str | None = None) -> None:
            """Log how the call ended, once, before the client can see the end of the stream."""
            nonlocal logged
            if not logged:
                logged = True
                self._log_outcome(prepared, outcome, response.status_code, start, usage=usage, detail=detail)

        first = True
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    finish("ok")
                    yield b"data: [DONE]\n\n"
                    return
                chunk = json.loads(data)
                if isinstance(chunk, dict) and "error" in chunk:
                    failure = json.dumps(chunk["error"])[:500]
                    error = UpstreamError(f"model {prepared.model.id} failed mid-stream: {failure}")
                    finish("upstream_error", error.detail)
                    yield _error_event(error)
                    return
                chunk["model"] = prepared.model.id
                if first:
                    chunk["aquifer"], first = prepared.extension, False
                usage = chunk.get("usage") or usage
                yield b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
            error = UpstreamError(f"model {prepared.model.id}: the stream ended without [DONE]")
            finish("upstream_error", error.detail)
            yield _error_event(error)
        except (httpx.HTTPError, ValueError) as exc:
            mapped = self._mapped(prepared, exc)
            finish(mapped.reasons[0], str(mapped))
            yield _error_event(mapped)
        finally:  # a client that went away: logged before the close, as a disconnect cancels the task at an await
            finish("client_disconnected")
            await response.aclose()

    # -- helpers -----------------------------------------------------------------------------------------------

    def _request(self, prepared: Prepared) -> dict[str, Any]:
        model = prepared.model
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if model.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ.get(model.api_key_env, '')}"
        return {
            "url": model.endpoint.rstrip("/") + "/chat/completions",
            "content": prepared.body,
            "headers": headers,
            "timeout": httpx.Timeout(model.timeout_s, connect=self.settings.gateway_connect_timeout_s),
        }

    def _mapped(self, prepared: Prepared, exc: Exception) -> UpstreamError | UpstreamTimeout:
        """The answer to a failed upstream call; its first reason is the logged outcome."""
        model = prepared.model
        if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
            return UpstreamError(
                f"model {model.id}: cannot connect to {model.endpoint} ({type(exc).__name__})",
                reasons=["upstream_unreachable"],
            )
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(
                f"model {model.id} at {model.endpoint} did not answer within {model.timeout_s:g} s",
                reasons=["upstream_timeout"],
            )
        return UpstreamError(
            f"model {model.id} at {model.endpoint}: {type(exc).__name__}: {exc}", reasons=["upstream_error"]
        )

    def _failed(self, prepared: Prepared, exc: Exception, start: float) -> UpstreamError | UpstreamTimeout:
        error = self._mapped(prepared, exc)
        self._log_outcome(prepared, error.reasons[0], None, start, detail=str(error))
        return error

    def _rejected(self, prepared: Prepared, status: int, text: str, start: float) -> UpstreamError:
        detail = f"model {prepared.model.id} at {prepared.model.endpoint} answered {status}: {text[:300]}"
        self._log_outcome(prepared, "upstream_error", status, start, detail=detail)
        return UpstreamError(detail, reasons=["upstream_error"])

    def _log_outcome(
        self,
        prepared: Prepared,
        outcome: str,
        status: int | None,
        start: float,
        *,
        usage: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        r, model = prepared.retrieval, prepared.model
        usage = usage or {}
        seconds = time.perf_counter() - start
        if self.observe:
            self.observe(model.id, outcome, seconds)
        tracing.upstream(model.id, model.endpoint, outcome, status, seconds, decision_id=r.decision_id, usage=usage)
        self.retriever.log.append(
            request_record(
                kind="upstream",
                agent=r.ctx.agent,
                user=r.ctx.user.ref if r.ctx.user else None,
                purpose=r.ctx.purpose,
                model=model.id,
                locality=model.locality.value,
                reasons=[] if outcome == "ok" else [outcome],
                revision=r.decided.revision,
                ref=r.decision_id,
                upstream={
                    "endpoint": model.endpoint,
                    "served_name": model.served_name,
                    "outcome": outcome,
                    "http_status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "prompt_tokens": usage.get("prompt_tokens"),
                    "completion_tokens": usage.get("completion_tokens"),
                    "detail": detail,
                },
            )
        )

    def _log_refusal(self, agent: str, purpose: str | None, model: str, reasons: list[str], user: User | None) -> None:
        entry = self.retriever.engine.catalog.models.get(model)
        self.retriever.log.append(
            request_record(
                kind="chat",
                agent=agent,
                user=user.ref if user else None,
                purpose=purpose,
                model=model,
                locality=entry.locality.value if entry else None,
                reasons=reasons,
            )
        )

    def _purposes(self, agent: str) -> list[str]:
        entry = self.retriever.engine.catalog.agents.get(agent)
        return list(entry.purposes) if entry else []


def _error_event(error: UpstreamError | UpstreamTimeout) -> bytes:
    return b"data: " + json.dumps(openai_body(error)).encode() + b"\n\n"
