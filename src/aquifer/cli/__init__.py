"""The ``aquifer`` command line: one module per group of commands, all registered on :data:`app`.

==============  ===========================================================
``data``        ``sample``, ``materialize``, ``status``, ``lineage``
``serve``       ``serve``, ``serve-model``, ``up``, ``ask``
``policy``      ``policy test``, ``policy eval``, ``policy explain``
``agents``      ``agents list``, ``agents issue-token``, ``agents revoke-token``
``audit``       ``audit prove``, ``ship-decisions``
``idp``         ``idp serve``, ``idp token``, ``idp keys``, ``idp rotate``, ``idp retire``
==============  ===========================================================
"""

import sys

from aquifer.cli import agents, audit, data, idp, policy, serve
from aquifer.cli._common import app

__all__ = ["agents", "app", "audit", "data", "idp", "main", "policy", "serve"]


def main() -> None:  # pragma: no cover
    sys.exit(app())
