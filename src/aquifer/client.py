"""A typed client for the Aquifer retrieval API, sync and async.

>>> from aquifer.client import AquiferClient
>>> with AquiferClient("http://127.0.0.1:8000", token="aq_...", user_token=id_token) as client:  # doctest: +SKIP
...     answer = client.context("How do refunds work?", purpose="customer_support", model="local_smollm2")
...     [c.receipt.source_uri for c in answer.chunks]
"""

from __future__ import annotations

from typing import Any

import httpx

from aquifer.service.schemas import ContextRequest, ContextResponse, ErrorResponse


class AquiferError(RuntimeError):
    """An error answer from the service: HTTP status, error kind, detail, and the policy's reasons if any."""

    def __init__(self, status: int, body: ErrorResponse) -> None:
        self.status, self.error, self.detail = status, body.error, body.detail
        self.reasons, self.explanations, self.field = body.reasons, body.explanations, body.field
        super().__init__(f"{status} {body.error}: {body.detail}" + (f" {body.reasons}" if body.reasons else ""))


def _headers(token: str, user_token: str | None) -> dict[str, str]:
    """The agent's bearer token, and the user's token when the agent acts for a user (``X-Aquifer-User-Token``)."""
    headers = {"Authorization": f"Bearer {token}"}
    if user_token is not None:
        headers["X-Aquifer-User-Token"] = user_token
    return headers


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = ErrorResponse.model_validate(response.json())
    except ValueError:
        body = ErrorResponse(error="http_error", detail=response.text[:500])
    raise AquiferError(response.status_code, body)


def _payload(
    query: str, purpose: str, model: str, top_k: int, max_tokens: int | None, as_of: str | int | None
) -> dict[str, Any]:
    request = ContextRequest(
        query=query,
        purpose=purpose,
        model=model,
        top_k=top_k,
        max_tokens=max_tokens,
        as_of=None if as_of is None else str(as_of),
    )
    return request.model_dump(exclude_none=True)


class AquiferClient:
    def __init__(self, base_url: str, *, token: str, user_token: str | None = None, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(token, user_token), timeout=timeout)

    def __enter__(self) -> AquiferClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def context(
        self,
        query: str,
        *,
        purpose: str,
        model: str,
        top_k: int = 8,
        max_tokens: int | None = None,
        as_of: str | int | None = None,
    ) -> ContextResponse:
        response = self._http.post("/v1/context", json=_payload(query, purpose, model, top_k, max_tokens, as_of))
        _raise_for(response)
        return ContextResponse.model_validate(response.json())

    def lineage(self, chunk_id: str, *, purpose: str | None = None, model: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"purpose": purpose, "model": model}.items() if v}
        response = self._http.get(f"/v1/lineage/{chunk_id}", params=params)
        _raise_for(response)
        return response.json()  # type: ignore[no-any-return]

    def decision(self, decision_id: str) -> dict[str, Any]:
        response = self._http.get(f"/v1/decisions/{decision_id}")
        _raise_for(response)
        return response.json()  # type: ignore[no-any-return]


class AsyncAquiferClient:
    def __init__(self, base_url: str, *, token: str, user_token: str | None = None, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(token, user_token), timeout=timeout)

    async def __aenter__(self) -> AsyncAquiferClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def context(
        self,
        query: str,
        *,
        purpose: str,
        model: str,
        top_k: int = 8,
        max_tokens: int | None = None,
        as_of: str | int | None = None,
    ) -> ContextResponse:
        response = await self._http.post("/v1/context", json=_payload(query, purpose, model, top_k, max_tokens, as_of))
        _raise_for(response)
        return ContextResponse.model_validate(response.json())

    async def lineage(self, chunk_id: str, *, purpose: str | None = None, model: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"purpose": purpose, "model": model}.items() if v}
        response = await self._http.get(f"/v1/lineage/{chunk_id}", params=params)
        _raise_for(response)
        return response.json()  # type: ignore[no-any-return]

    async def decision(self, decision_id: str) -> dict[str, Any]:
        response = await self._http.get(f"/v1/decisions/{decision_id}")
        _raise_for(response)
        return response.json()  # type: ignore[no-any-return]
