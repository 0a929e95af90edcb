"""Policy decisions: which agent, for which purpose, through which model, may see which resource.

The rules are Rego under ``policies/`` (package ``aquifer.context``); the registries they read come from
``catalog/``. Two engines give identical decisions: rego-cpp embedded (default) and a real OPA server.

>>> from aquifer.policy import PolicyEngine, RequestContext, Resource
>>> engine = PolicyEngine.from_settings(get_settings())  # doctest: +SKIP
"""

from aquifer.policy.backends import EmbeddedBackend, OpaBackend, PolicyEngineUnavailable
from aquifer.policy.decision import (
    ACTIONS,
    INVALID_INPUT,
    POLICY_ENGINE_UNAVAILABLE,
    BatchDecision,
    Decision,
    Obligations,
    RequestContext,
    Resource,
)
from aquifer.policy.engine import PolicyEngine
from aquifer.policy.source import PolicySource

__all__ = [
    "ACTIONS",
    "INVALID_INPUT",
    "POLICY_ENGINE_UNAVAILABLE",
    "BatchDecision",
    "Decision",
    "EmbeddedBackend",
    "Obligations",
    "OpaBackend",
    "PolicyEngine",
    "PolicyEngineUnavailable",
    "PolicySource",
    "RequestContext",
    "Resource",
]
