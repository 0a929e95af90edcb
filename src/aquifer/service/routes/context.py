"""``POST /v1/context``: governed context for a query."""

from fastapi import APIRouter, Response

from aquifer.service.deps import AgentDep, MetricsDep, RetrieverDep, TimingsDep, UserDep
from aquifer.service.errors import responses
from aquifer.service.schemas import ContextRequest, ContextResponse

router = APIRouter(tags=["context"])


@router.post("/v1/context", response_model=ContextResponse, responses=responses(401, 403, 422, 503))
def context(
    body: ContextRequest,
    agent: AgentDep,
    user: UserDep,
    retriever: RetrieverDep,
    metrics: MetricsDep,
    timings: TimingsDep,
    http: Response,
) -> ContextResponse:
    """Governed context for a query: only chunks this agent (and the user it acts for, ``X-Aquifer-User-Token``)
    may see for this purpose through this model, redacted as the policy requires, each with its provenance receipt.
    The ``Server-Timing`` header gives the time of each stage in milliseconds."""
    response = retriever.context(agent, body, timings, user=user, fields={"channel": "rest"})
    http.headers["Server-Timing"] = timings.server_timing()
    metrics.observe_stages(timings)
    metrics.requests.labels("context", "200").inc()
    metrics.chunks.labels("allow", "").inc(len(response.chunks))
    new_alerts = len(retriever.alerts)
    if new_alerts:
        metrics.alerts.inc(new_alerts)
        retriever.alerts.clear()
    return response
