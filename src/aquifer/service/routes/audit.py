"""What an answer is made of, after the fact: ``GET /v1/lineage/{chunk_id}`` and ``GET /v1/decisions/{id}``."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from aquifer.ids import CHUNK_ID_PATTERN, DECISION_ID_PATTERN, Identifier
from aquifer.service.deps import AgentDep, RetrieverDep, UserDep
from aquifer.service.errors import responses
from aquifer.service.schemas import DecisionRecord

router = APIRouter()


@router.get("/v1/lineage/{chunk_id}", responses=responses(401, 403, 404, 422, 503), tags=["lineage"])
def lineage(
    chunk_id: Annotated[str, Path(pattern=CHUNK_ID_PATTERN, description="A chunk id (gld_...) or platinum id")],
    agent: AgentDep,
    user: UserDep,
    retriever: RetrieverDep,
    purpose: Annotated[Identifier | None, Query(description="Default: the agent's first purpose")] = None,
    model: Annotated[Identifier | None, Query(description="Default: the agent's default model")] = None,
) -> dict[str, Any]:
    """The lineage of a chunk this agent may read (for this purpose and model), back to its landing file."""
    return retriever.lineage(agent, chunk_id, purpose=purpose, model=model, user=user, fields={"channel": "rest"})


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionRecord,
    responses=responses(401, 403, 404, 422, 503),
    tags=["audit"],
)
def decision(
    decision_id: Annotated[str, Path(pattern=DECISION_ID_PATTERN, description="dec_ and 32 hex digits")],
    agent: AgentDep,
    user: UserDep,
    retriever: RetrieverDep,
) -> dict[str, Any]:
    """A decision record from the log, for agents the policy lets read them (role ``auditor``)."""
    return retriever.decision(agent, decision_id, user=user)
