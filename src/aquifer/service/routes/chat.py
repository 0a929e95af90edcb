"""The OpenAI-compatible gateway: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from aquifer.service.deps import AgentDep, GatewayDep, MetricsDep, RetrieverDep, TimingsDep, UserDep
from aquifer.service.errors import responses
from aquifer.service.gateway import PURPOSE_HEADER
from aquifer.service.schemas import ChatRequest, ModelList

router = APIRouter(tags=["gateway"])

OPENAI_ROUTES = ("/v1/chat/completions", "/v1/models")
"""Routes whose errors take OpenAI's shape (``{"error": {"message": ...}}``) and codes, so OpenAI clients show them."""


@router.post("/v1/chat/completions", responses=responses(400, 401, 403, 502, 503, 504, openai=True))
async def chat_completions(
    body: ChatRequest,
    agent: AgentDep,
    user: UserDep,
    gateway: GatewayDep,
    metrics: MetricsDep,
    timings: TimingsDep,
    purpose: Annotated[str | None, Header(alias=PURPOSE_HEADER, description="The purpose of this call")] = None,
) -> Response:
    """OpenAI-compatible chat completion, grounded in governed context (streaming or not): the official ``openai``
    client with ``base_url=<aquifer>/v1`` and an agent token as api key works unchanged. The answer carries an
    ``aquifer`` member (the first chunk's, when streaming): citations ``[n]`` with their provenance receipts, the
    decision id, and what the policy withheld and why."""
    prepared = await run_in_threadpool(gateway.prepare, agent, body, purpose, timings, user)
    metrics.observe_stages(timings)
    headers = {"X-Aquifer-Decision-Id": prepared.retrieval.decision_id}
    if body.stream:
        events = await gateway.open_stream(prepared)
        metrics.requests.labels("chat", "200").inc()
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    answer = await gateway.complete(prepared)
    metrics.requests.labels("chat", "200").inc()
    return JSONResponse(answer, headers=headers)


@router.get("/v1/models", response_model=ModelList, responses=responses(401, 503, openai=True))
def models(agent: AgentDep, user: UserDep, retriever: RetrieverDep) -> ModelList:
    """The registered models the policy lets this agent send context to (OpenAI's model list), with their locality;
    the agent's default model first."""
    return ModelList.of(retriever.models(agent, user=user))
