"""Ask a question as an agent, through the governed gateway, with the official ``openai`` client.

``aquifer ask --agent <id> "question"`` and the example agents in ``agents/`` use :func:`ask`; :func:`show` prints
the answer, its sources ``[n]`` with their receipts, and what the policy withheld and why. The agent's purpose,
default model and system prompt (``instructions``) come from ``catalog/agents/<id>.yaml``; its token from
``AQUIFER_TOKEN`` or, for the demo agents in development, their development-only token. An agent acting for a user
sends the user's token too (``X-Aquifer-User-Token``): ``AQUIFER_USER_TOKEN``, or ``--as <demo user>``, whose token
the development IdP of ``catalog/identity.yaml`` issues.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

from aquifer.catalog import Catalog, load_catalog
from aquifer.credentials import CredentialStore, development_token
from aquifer.settings import Settings, get_settings

DEFAULT_URL = "http://127.0.0.1:8000/v1"


class AskError(RuntimeError):
    """The question could not be asked or was refused; the message says which and why."""


@dataclass
class Answer:
    agent: str
    purpose: str
    model: str
    text: str
    aquifer: dict[str, Any] = field(default_factory=dict)
    """The gateway's ``aquifer`` member: decision id, citations with receipts, withheld datasets and reasons."""


def agent_token(agent: str, settings: Settings) -> str:
    """``AQUIFER_TOKEN``, else the agent's development-only demo token (refused in production)."""
    token = os.environ.get("AQUIFER_TOKEN")
    if token:
        return token
    if settings.environment == "development":
        for credential in CredentialStore(settings.credentials_file).load().values():
            if credential.agent == agent and (dev := development_token(credential)):
                return dev
    msg = f"no token for agent {agent}: set AQUIFER_TOKEN (issue one with `aquifer agents issue-token {agent}`)"
    raise AskError(msg)


def user_token(as_user: str | None, catalog: Catalog, settings: Settings) -> str | None:
    """The user token to send: ``AQUIFER_USER_TOKEN``, else, for ``as_user``, one from the catalog's development
    IdP (development only; the demo users' password is ``demo``), else None (the agent acts for itself)."""
    from aquifer.identity.client import TokenError, password_token

    if as_user is None:
        return os.environ.get("AQUIFER_USER_TOKEN") or None
    if settings.environment != "development":
        raise AskError("--as uses the development IdP, which production refuses: set AQUIFER_USER_TOKEN instead")
    issuer = next((i for i in catalog.identity.issuers if i.development_only), None)
    if issuer is None:
        raise AskError("--as needs a development_only issuer in catalog/identity.yaml (the development IdP)")
    try:
        return password_token(issuer.issuer, as_user, "demo", client_id=issuer.audiences[0])
    except TokenError as exc:
        raise AskError(str(exc)) from None


def ask(
    question: str,
    *,
    agent: str,
    base_url: str = DEFAULT_URL,
    token: str | None = None,
    as_user: str | None = None,
    purpose: str | None = None,
    model: str | None = None,
    max_tokens: int = 256,
    on_text: Callable[[str], None] | None = None,
    catalog: Catalog | None = None,
) -> Answer:
    """One governed chat completion for ``agent``. With ``on_text`` the answer streams (each piece is passed to it
    as it arrives); without, it comes in one response."""
    from openai import APIConnectionError, APIError, APIStatusError, OpenAI

    settings = get_settings()
    catalog = catalog or load_catalog(settings.catalog_dir)
    entry = catalog.agents.get(agent)
    if entry is None:
        known = sorted(catalog.agents)
        raise AskError(f"agent {agent} is not registered in {settings.catalog_dir}/agents (known: {known})")
    purpose = purpose or entry.purposes[0]
    model = model or entry.default_model
    messages: list[dict[str, str]] = [{"role": "user", "content": question}]
    if entry.instructions:
        messages.insert(0, {"role": "system", "content": entry.instructions.strip()})
    user = user_token(as_user, catalog, settings)
    headers = {"X-Aquifer-User-Token": user} if user else None
    client = OpenAI(
        base_url=base_url,
        api_key=token or agent_token(agent, settings),
        default_headers=headers,
        max_retries=0,
        timeout=300,
    )
    request: Any = {
        "model": model,
        "messages": messages,
        "metadata": {"purpose": purpose},
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    try:
        if on_text is None:
            completion = client.chat.completions.create(**request)
            text = completion.choices[0].message.content or ""
            extension = (completion.model_extra or {}).get("aquifer", {})
        else:
            pieces, extension = [], {}
            for chunk in client.chat.completions.create(**request, stream=True):
                extension = extension or (chunk.model_extra or {}).get("aquifer", {})
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    pieces.append(piece)
                    on_text(piece)
            text = "".join(pieces)
    except APIStatusError as exc:
        raise AskError(f"{exc.status_code}: {_message(exc.body) or exc.message}") from None
    except APIConnectionError:
        raise AskError(f"cannot reach Aquifer at {base_url}: is `make up` (or `aquifer serve`) running?") from None
    except APIError as exc:
        raise AskError(str(exc.message)) from None
    return Answer(agent, purpose, model, text.strip(), extension)


def _message(body: object) -> str | None:
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    reasons = error.get("explanations") or []
    return str(error.get("message")) + "".join(f"\n  - {r}" for r in reasons if r not in str(error.get("message")))


def show(answer: Answer, console: Console, *, text: bool = True) -> None:
    """The answer (unless it was streamed already), its sources and what was withheld."""
    ext = answer.aquifer
    on_behalf = f" · for user {escape(ext['user'])}" if ext.get("user") else ""
    console.print(
        f"[bold]{answer.agent}[/]{on_behalf} · purpose {answer.purpose} · model {answer.model} "
        f"({ext.get('locality', '?')})",
        highlight=False,
    )
    if text:
        console.print(escape(answer.text), highlight=False, soft_wrap=True)
    citations = ext.get("citations", [])
    console.print(
        f"\n[bold]Sources[/] ({ext.get('context_tokens', 0)} tokens of context)"
        if citations
        else "\n[bold]Sources[/]: none this agent may use for this question"
    )
    for c in citations:
        notes = [c["classification"]]
        notes += [f"{r['type']} redacted x{r['count']}" for r in c["redactions"]]
        notes += [c["label"]] if c.get("label") else []
        notes += [f"ACL: {' '.join(c['receipt']['admitted_by'])}"] if c["receipt"].get("admitted_by") else []
        where = f"{c['dataset']}: {c['receipt']['source_uri']} · {c['chunk_id']}"
        console.print(f"  [{c['n']}] {where} ({', '.join(notes)})", highlight=False, markup=False, soft_wrap=True)
    left_out = [
        f"{n} {what}"
        for n, what in (
            (ext.get("near_duplicates", 0), "near-duplicates"),
            (ext.get("over_budget", 0), "over the token budget"),
        )
        if n
    ]
    if left_out:
        console.print(f"  (left out: {', '.join(left_out)})", highlight=False)
    withheld = ext.get("withheld", [])
    if withheld:
        console.print("\n[bold]Withheld by policy[/] (reason codes; the answer's aquifer.withheld explains them)")
        for w in withheld:
            console.print(
                f"  {w['dataset']} ({', '.join(w['classifications'])}): {', '.join(w['reasons'])}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    if ext.get("decision_id"):
        console.print(
            f"\ndecision {ext['decision_id']} · policy {ext['policy_revision']} · index v{ext['index_version']}",
            highlight=False,
        )
