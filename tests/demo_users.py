"""The demo users (src/aquifer/sample/users.json) as the verifier would map them: for tests that decide for a user
without going through a token (the token path has its own tests)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aquifer.identity.user import User
from aquifer.settings import PROJECT_ROOT

ISSUER = "tidewater_dev_idp"
USERS_FILE = PROJECT_ROOT / "src/aquifer/sample/users.json"

# Who asks through which agent in the demo (an agent with acts_for: user needs one).
ACTING_FOR = {"hr_case_assistant": "amira.haddad", "finance_analyst": "erin.walsh"}


@cache
def directory() -> dict[str, Any]:
    users: dict[str, Any] = json.loads(USERS_FILE.read_text())["users"]
    return users


def user(name: str) -> User:
    entry = directory()[name]
    return User(ISSUER, name, tuple(entry["groups"]), (("department", entry["department"]),))


def for_agent(agent: str) -> User | None:
    """The demo user an agent acts for (None for agents that may act for themselves)."""
    name = ACTING_FOR.get(agent)
    return user(name) if name else None
