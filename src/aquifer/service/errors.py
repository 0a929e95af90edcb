"""What can go wrong in the service, as domain errors, and the one table that turns them into HTTP answers.

The errors carry what a caller needs (a kind, a detail, the policy's reasons and explanations, the field at fault)
and no status code: :data:`STATUS` maps each to one, and :func:`status_of` is the only place that decides it (an
invalid request is 422, or 400 on the OpenAI-compatible routes, whose clients expect OpenAI's codes).
:func:`error_body` and :func:`openai_body` are the two shapes an error is written in.
"""

from __future__ import annotations

from typing import Any

from aquifer.service.schemas import ErrorResponse, OpenAIErrorResponse


class ServiceError(Exception):
    """Base of every error the service answers with; ``error`` is its stable kind."""

    error = "internal"

    def __init__(
        self,
        detail: str,
        *,
        reasons: list[str] | None = None,
        explanations: list[str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail, self.reasons, self.explanations, self.field = detail, reasons or [], explanations or [], field


class Unauthenticated(ServiceError):
    error = "unauthenticated"


class Forbidden(ServiceError):
    """Refused by the policy: ``reasons`` are its codes."""

    error = "forbidden"


class NotFound(ServiceError):
    error = "not_found"


class InvalidRequest(ServiceError):
    """A request that cannot be governed as sent; ``field`` names what is wrong."""

    error = "invalid_request"


class Unavailable(ServiceError):
    """The policy engine or the index cannot answer: fail closed, nothing served."""

    error = "unavailable"


class UpstreamError(ServiceError):
    """The model endpoint was unreachable or answered with an error."""

    error = "upstream_error"


class UpstreamTimeout(ServiceError):
    """The model endpoint did not answer (or stopped streaming) within the model's ``timeout_s``."""

    error = "upstream_timeout"


STATUS: dict[type[ServiceError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    InvalidRequest: 422,
    UpstreamError: 502,
    Unavailable: 503,
    UpstreamTimeout: 504,
}

DESCRIPTIONS = {
    400: "Invalid request, naming the field (OpenAI-compatible routes answer 400 where the others answer 422)",
    401: "Missing or invalid agent token (WWW-Authenticate: Bearer)",
    403: "Refused by policy, with reason codes and their explanations",
    404: "No such record, or one this agent may not read (the same answer for both)",
    422: "Invalid request, naming the field: a value out of range, or an id that is not an identifier",
    502: "The model endpoint is unreachable or answered with an error",
    503: "Policy engine or index unavailable (fail closed, nothing served)",
    504: "The model endpoint did not answer within the model's timeout_s",
}


def status_of(exc: ServiceError, *, openai: bool = False) -> int:
    """The HTTP status of an error; an invalid request is 400 where OpenAI's codes are expected."""
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    return 400 if openai and status == 422 else status


def error_body(exc: ServiceError) -> dict[str, Any]:
    body = ErrorResponse(
        error=exc.error, detail=exc.detail, reasons=exc.reasons, explanations=exc.explanations, field=exc.field
    )
    return body.model_dump(exclude_none=True)


def openai_body(exc: ServiceError) -> dict[str, Any]:
    """An error in the shape OpenAI clients parse (``error.message``), with Aquifer's reasons beside it."""
    return {
        "error": {
            "message": exc.detail,
            "type": exc.error,
            "code": exc.reasons[0] if exc.reasons else exc.error,
            "param": exc.field,
            "reasons": exc.reasons,
            "explanations": exc.explanations,
        }
    }


def responses(*statuses: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """A route's error answers for OpenAPI, each with its body model, so a generated client knows them."""
    model = OpenAIErrorResponse if openai else ErrorResponse
    return {status: {"model": model, "description": DESCRIPTIONS[status]} for status in statuses}
