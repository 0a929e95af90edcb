"""The one list of reason codes that do not come from the Rego policy.

Every authorization decision is the policy's (``policies/``, with its reason codes and ``explain()``). Python adds
codes only where there is no decision to make: an engine that cannot decide (fail closed), a request that cannot
be governed as sent (validation, before the policy is asked), and how a call to a model endpoint ended. Each code
here is what a client or an auditor may see in ``reasons`` (or ``error.code`` on the OpenAI routes) besides the
policy's own; docs/policies.md lists them beside the policy's, and a test keeps both lists and the code in step.
"""

from __future__ import annotations

POLICY_ENGINE_UNAVAILABLE = "policy_engine_unavailable"

ANSWERED_401 = frozenset({"user_token_required"})
"""The policy's own codes that mean "say who you are" rather than "forbidden": the service answers a request-level
denial carrying one 401, not 403. Python reads them; only the policy gives them."""
INVALID_INPUT = "invalid_input"

NON_POLICY_CODES: dict[str, str] = {
    POLICY_ENGINE_UNAVAILABLE: "503: no decision could be made (policy that does not compile, engine error, timeout, "
    "unreachable OPA, malformed answer): everything is denied",
    INVALID_INPUT: "503: an id that is not an identifier reached the engine, which refuses to evaluate it (the routes "
    "answer 422/400 before that)",
    "purpose_missing": "400 (gateway): no X-Aquifer-Purpose header and no metadata.purpose",
    "no_user_message": "400 (gateway): no user message with text to ground",
    "upstream_key_missing": "502 (gateway): the model's api_key_env is not set, so its endpoint cannot be called",
    "upstream_unreachable": "502 (gateway): the model endpoint could not be connected to",
    "upstream_error": "502 (gateway): the model endpoint answered with an error, or not with a chat completion",
    "upstream_timeout": "504 (gateway): the model endpoint did not answer within the model's timeout_s",
    "client_disconnected": "an upstream record's outcome: the client went away before the stream ended",
    "user_token_invalid": "401: the X-Aquifer-User-Token is not a valid token of a trusted issuer (malformed, bad "
    "signature, disallowed algorithm, unknown key, missing or ill-typed claim)",
    "user_token_expired": "401: the user token's exp has passed",
    "user_token_not_yet_valid": "401: the user token's nbf or iat is in the future",
    "user_token_untrusted_issuer": "401: the user token's iss is not an issuer of catalog/identity.yaml (or a "
    "development-only one in production)",
    "user_token_wrong_audience": "401: the user token's aud is not one the issuer's entry accepts",
    "identity_provider_unavailable": "503: the issuer's keys cannot be fetched and the cached ones have expired: "
    "user-bound requests fail closed",
}
