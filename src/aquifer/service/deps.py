"""The dependencies routes declare: the shared resources of the service (created in its lifespan) and the
authenticated agent. Typed aliases, so a route says ``agent: AgentDep`` and gets the agent id."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from aquifer.identity.user import User
from aquifer.service.errors import Unauthenticated
from aquifer.service.gateway import Gateway
from aquifer.service.metrics import Metrics, Timings
from aquifer.service.retrieval import Retriever
from aquifer.service.warm import PrefilterWarmer

bearer = HTTPBearer(auto_error=False, description="An agent token (aquifer agents issue-token)")
USER_TOKEN_HEADER = "X-Aquifer-User-Token"
user_token = APIKeyHeader(
    name=USER_TOKEN_HEADER,
    auto_error=False,
    scheme_name="UserToken",
    description="The OIDC token (JWT) of the user the agent acts for, issued by an IdP of catalog/identity.yaml. "
    "Required for agents registered with acts_for: user; refused for acts_for: self.",
)


def get_retriever(request: Request) -> Retriever:
    return request.app.state.retriever  # type: ignore[no-any-return]


def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def get_warmer(request: Request) -> PrefilterWarmer | None:
    return request.app.state.warmer  # type: ignore[no-any-return]


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
GatewayDep = Annotated[Gateway, Depends(get_gateway)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
WarmerDep = Annotated[PrefilterWarmer | None, Depends(get_warmer)]


def current_agent(
    request: Request,
    retriever: RetrieverDep,
    metrics: MetricsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The agent the bearer token authenticates (401 otherwise); starts the request's :class:`Timings`."""
    timings = Timings()
    with timings.stage("auth"):
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated("missing bearer token (Authorization: Bearer <agent token>)")
        agent = retriever.authenticate(credentials.credentials)
    metrics.stage.labels("auth").observe(timings.seconds["auth"])
    timings.annotate(agent=agent)  # on the request's span when traces are exported: refusals name the agent too
    request.state.timings = timings
    return agent


def get_timings(request: Request, agent: Annotated[str, Depends(current_agent)]) -> Timings:
    """The request's stage timings (after authentication)."""
    return request.state.timings  # type: ignore[no-any-return]


AgentDep = Annotated[str, Depends(current_agent)]
TimingsDep = Annotated[Timings, Depends(get_timings)]


def current_user(
    request: Request,
    agent: AgentDep,
    retriever: RetrieverDep,
    token: Annotated[str | None, Depends(user_token)],
) -> User | None:
    """The user the verified ``X-Aquifer-User-Token`` names (None without the header), checked only after the
    agent authenticated: strangers never make Aquifer call an IdP. 401 for a bad token, 503 when its keys cannot
    be had (fail closed)."""
    # APIKeyHeader (there for the OpenAPI security scheme) reads an empty header as none; an empty user token is a
    # bad token, never "no user": for an agent that may act either way, no user is a different, wider decision.
    token = request.headers.get(USER_TOKEN_HEADER)
    if token is None:
        return None
    timings: Timings = request.state.timings
    with timings.stage("auth"):  # the agent's and the user's verification, together
        return retriever.identify(token)


UserDep = Annotated[User | None, Depends(current_user)]
