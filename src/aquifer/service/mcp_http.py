"""The MCP server over Streamable HTTP, at ``/mcp`` of the API's own process, and how clients find out to
authenticate.

- ``/mcp`` answers only a request whose bearer token authenticates an agent, checked on every HTTP request before
  the MCP SDK sees it: anything else is 401 with ``WWW-Authenticate: Bearer ... resource_metadata="..."``, so a
  stranger never gets a tool list. The SDK binds each session to the agent that opened it (another credential
  gets 404 for that session id), and each tool call re-reads its own request's tokens (:mod:`.mcp_server`).
- ``/.well-known/oauth-protected-resource/mcp`` (RFC 9728; also without the ``/mcp`` suffix) names the resource, the
  header the agent token goes in, and the trusted issuers of ``catalog/identity.yaml`` whose tokens go in
  ``X-Aquifer-User-Token`` (as ``aquifer_user_token_issuers``, not ``authorization_servers``: no OAuth server
  issues agent tokens). Its URLs come from ``public_url`` when set, else from the request.
- DNS-rebinding protection (the SDK's): only the loopback hosts, ``mcp_allowed_hosts`` and ``public_url``'s host.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from aquifer.service.deps import USER_TOKEN_HEADER
from aquifer.service.errors import Unauthenticated
from aquifer.service.mcp_server import build_server, http_credentials
from aquifer.service.metrics import Metrics
from aquifer.service.retrieval import Retriever
from aquifer.settings import Settings

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
SCOPE = "context:read"


def base_url(settings: Settings, scope: Scope | None = None, request: Request | None = None) -> str:
    """The service's URL as the client reached it (``public_url`` when set)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    headers = request.headers if request is not None else Headers(scope=scope)
    scheme = (request.url.scheme if request is not None else (scope or {}).get("scheme")) or "http"
    return f"{scheme}://{headers.get('host') or '127.0.0.1'}"


class McpEndpoint:
    """``/mcp``: authenticate the agent, then hand the request to the session manager of the current lifespan."""

    def __init__(self, app: FastAPI, settings: Settings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        retriever: Retriever = self.app.state.retriever
        auth = Headers(scope=scope).get("authorization") or ""
        token = auth[7:] if auth[:7].lower() == "bearer " else None
        try:
            agent = retriever.authenticate(token)
        except Unauthenticated as exc:
            self.metrics.requests.labels("mcp", "401").inc()
            await self._refuse(scope, send, str(exc.detail))
            return
        user = AuthenticatedUser(AccessToken(token=token or "", client_id=agent, scopes=[SCOPE]))
        scope["user"], scope["auth"] = user, AuthCredentials([SCOPE])
        reset = auth_context_var.set(user)
        try:
            await self.app.state.mcp_http(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    async def _refuse(self, scope: Scope, send: Send, detail: str) -> None:
        metadata = base_url(self.settings, scope) + METADATA_PATH + MCP_PATH
        description = detail.replace('"', "'")
        challenge = f'Bearer error="invalid_token", error_description="{description}", resource_metadata="{metadata}"'
        body = json.dumps({"error": "unauthenticated", "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def protected_resource_metadata(settings: Settings, retriever: Retriever, request: Request) -> dict[str, Any]:
    """RFC 9728 metadata of ``/mcp``."""
    base = base_url(settings, request=request)
    issuers = [i.issuer for i in retriever.engine.catalog.identity.issuers]
    # No ``authorization_servers``: the bearer token of /mcp is an Aquifer agent token, which no OAuth server
    # issues, and a client told to fetch one from the IdPs would loop on 401. The IdPs' tokens are user tokens.
    return {
        "resource": base + MCP_PATH,
        "bearer_methods_supported": ["header"],
        "scopes_supported": [SCOPE],
        "resource_name": "Aquifer governed context (MCP)",
        "resource_documentation": base + "/docs",
        # Aquifer's own members (RFC 9728 section 2 allows others): where each credential goes, and who may issue
        # the user's
        "aquifer_agent_token": "Authorization: Bearer <agent token> (issued by `aquifer agents issue-token`)",
        "aquifer_user_token_header": USER_TOKEN_HEADER,
        "aquifer_user_token_issuers": issuers,
    }


def install(app: FastAPI, settings: Settings, metrics: Metrics) -> Callable[[], Any]:
    """Add ``/mcp`` and its metadata to ``app``; returns the lifespan context that runs the MCP session manager
    (Starlette does not run a mounted app's lifespan, and a session manager runs once: one per lifespan)."""

    def retriever() -> Retriever:
        return app.state.retriever  # type: ignore[no-any-return]

    app.router.routes.append(Route(MCP_PATH, endpoint=McpEndpoint(app, settings, metrics), include_in_schema=False))

    @app.get(METADATA_PATH + MCP_PATH, tags=["mcp"], summary="OAuth protected-resource metadata of /mcp (RFC 9728)")
    @app.get(METADATA_PATH, tags=["mcp"], include_in_schema=False)
    def metadata(request: Request) -> JSONResponse:
        body = protected_resource_metadata(settings, retriever(), request)
        return JSONResponse(body, headers={"Cache-Control": "max-age=60"})

    hosts = list(settings.mcp_allowed_hosts)
    if settings.public_url:
        hosts.append(urlsplit(settings.public_url).netloc)
    origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    security = TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)

    @asynccontextmanager
    async def running() -> AsyncIterator[MCPServer[Any]]:
        server = build_server(retriever, metrics, http_credentials)
        server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            transport_security=security,
            max_sessions=settings.mcp_max_sessions,
            json_response=True,  # no tool streams progress: one JSON answer is cheaper than SSE (bench/mcp.py)
        )
        app.state.mcp_http = StreamableHTTPASGIApp(server.session_manager)
        async with server.session_manager.run():
            yield server

    return running
