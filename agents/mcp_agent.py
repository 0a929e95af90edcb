"""An agent that reaches Aquifer over MCP: the official MCP client calls ``search_context``, then the agent answers
on its own model, directly (an MCP client is the model host), citing the sources [n].

    python -m agents.mcp_agent "How do refunds work?"                                  # Streamable HTTP, /mcp
    python -m agents.mcp_agent --stdio "How do refunds work?"                          # starts `aquifer mcp`
    python -m agents.mcp_agent --agent hr_case_assistant --as amira.haddad "open relocation cases"

(``python agents/mcp_agent.py ...`` works too.) The context is governed for the agent's registered default model
(``local_smollm2`` for the demo's local agents), so the agent sends it to that model's endpoint from
``catalog/models/<id>.yaml`` (``--model-url`` overrides the URL) and to no other. It prints the answer, every
source with its chunk id, dataset and receipt's decision id (``*``: cited in the answer), and what the policy
withheld, with the reason codes. A refusal prints the policy's reasons and exits 1.

The agent token is ``AQUIFER_AGENT_TOKEN`` (as ``aquifer mcp`` reads it), else ``AQUIFER_TOKEN``, else, in
development, the demo token of ``--agent``; never an argument. The user token is ``--as <demo user>`` (from the
development IdP), else ``AQUIFER_USER_TOKEN`` or the file ``AQUIFER_USER_TOKEN_FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from aquifer.ask import AskError, agent_token, user_token
from aquifer.catalog import Catalog, load_catalog
from aquifer.settings import get_settings

NAME = "mcp_agent"
PREAMBLE = (
    "Context: numbered sources that Aquifer retrieved and checked for this question. Answer from them and cite the"
    " sources you use as [n]. If they do not contain the answer, say so."
)
NO_CONTEXT = (
    "Context: Aquifer found no source this agent may use for this question. Say that you cannot answer it from"
    " governed sources."
)


class Failure(Exception):
    """Something the user must fix or know: printed to stderr, exit 1."""


# -- the MCP call ----------------------------------------------------------------------------------------------------


async def search(args: argparse.Namespace, token: str, user: str | None) -> dict[str, Any]:
    """``search_context`` over Streamable HTTP (or stdio): its structured result; a tool error raises
    :class:`Failure` with the policy's reasons."""
    from mcp import Client

    arguments: dict[str, Any] = {"query": args.question, "purpose": args.purpose, "top_k": args.top_k}
    if args.context_tokens:
        arguments["max_tokens"] = args.context_tokens
    refused: list[str] = []  # the body of a 401 from /mcp (the SDK reports it only as "an error response")
    if args.stdio:
        from mcp.client.stdio import StdioServerParameters

        # the server reads its credentials from its environment, and its settings (data dir, catalog) from ours
        env = dict(os.environ) | {"AQUIFER_AGENT_TOKEN": token} | ({"AQUIFER_USER_TOKEN": user} if user else {})
        client = Client(StdioServerParameters(command=sys.executable, args=["-m", "aquifer", "mcp"], env=env))
    else:
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        headers = {"Authorization": f"Bearer {token}"} | ({"X-Aquifer-User-Token": user} if user else {})
        http = create_mcp_http_client(headers=headers)

        async def on_response(response: Any) -> None:
            if response.status_code == 401:
                await response.aread()
                refused.append(response.json().get("detail", response.text) if _is_json(response) else response.text)

        http.event_hooks["response"].append(on_response)
        client = Client(streamable_http_client(args.url.rstrip("/") + "/mcp", http_client=http))
    try:
        async with client as session:
            result = await session.call_tool("search_context", arguments)
    except Exception as exc:  # the SDK raises from task groups: find the cause
        if refused:
            raise Failure(f"Aquifer refused the agent token (401): {refused[0]}") from None
        raise Failure(_connection_failure(args, exc)) from exc
    if result.is_error:
        raise Failure(_refusal(result))
    return dict(result.structured_content or {})


def _is_json(response: Any) -> bool:
    return "json" in response.headers.get("content-type", "")


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _connection_failure(args: argparse.Namespace, exc: BaseException) -> str:
    leaves = _leaves(exc)
    if args.stdio:
        return f"`aquifer mcp` failed ({'; '.join(map(repr, leaves))}); its own message is above"
    if any(type(e).__name__ in {"ConnectError", "ConnectTimeout"} or isinstance(e, OSError) for e in leaves):
        return f"cannot reach Aquifer at {args.url}: is `make up` (or `aquifer serve`) running?"
    return f"MCP call to {args.url}/mcp failed: {'; '.join(str(e) or repr(e) for e in leaves)}"


def _refusal(result: Any) -> str:
    body = result.structured_content or {}
    text = " ".join(getattr(c, "text", "") for c in result.content) or "tool error"
    if "error" not in body:
        return f"search_context failed: {text}"
    lines = [f"search_context refused ({body['error']}): {body.get('detail') or text}"]
    for code, why in zip(body.get("reasons") or [], body.get("explanations") or [], strict=False):
        lines.append(f"  {code}: {why}")
    lines += [f"  {code}" for code in (body.get("reasons") or [])[len(body.get("explanations") or []) :]]
    return "\n".join(lines)


# -- the model call --------------------------------------------------------------------------------------------------


def prompt(catalog: Catalog, found: dict[str, Any], question: str) -> list[dict[str, str]]:
    """The agent's instructions and the governed sources, numbered as search_context numbered them."""
    parts = [PREAMBLE] if found["chunks"] else [NO_CONTEXT]
    for c in found["chunks"]:
        label = f" ({c['label']})" if c.get("label") else ""
        parts.append(f"[{c['n']}] {c['dataset']}: {c['receipt']['source_uri']}{label}\n{c['text'].strip()}")
    agent = catalog.agents.get(found["agent"])
    instructions = agent.instructions.strip() if agent and agent.instructions else ""
    system = "\n\n".join(([instructions] if instructions else []) + parts)
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def answer(catalog: Catalog, found: dict[str, Any], args: argparse.Namespace) -> str:
    """The answer of the model the context was governed for (its registered endpoint, or ``--model-url``)."""
    from openai import APIConnectionError, APIError, OpenAI

    model = catalog.models.get(found["model"])
    if model is None:
        raise Failure(f"model {found['model']} (the agent's default) is not in {get_settings().catalog_dir}/models")
    url = args.model_url or model.endpoint
    key = os.environ.get(model.api_key_env, "") if model.api_key_env else ""
    client = OpenAI(base_url=url, api_key=key or "not-needed", max_retries=0, timeout=300)
    try:
        completion = client.chat.completions.create(
            model=model.served_name or model.id,
            messages=prompt(catalog, found, args.question),  # type: ignore[arg-type]
            max_tokens=args.max_tokens,
            temperature=0,
        )
    except APIConnectionError:
        hint = "is `make up` (or `aquifer serve-model`) running?"
        raise Failure(f"cannot reach model {model.id} at {url}: {hint}") from None
    except APIError as exc:
        raise Failure(f"model {model.id} at {url}: {exc.message}") from None
    return (completion.choices[0].message.content or "").strip()


# -- output ----------------------------------------------------------------------------------------------------------


def show(found: dict[str, Any], text: str, via: str) -> None:
    on_behalf = f" · for user {found['user']}" if found.get("user") else ""
    print(
        f"{found['agent']}{on_behalf} · purpose {found['purpose']} · model {found['model']} ({found['locality']})"
        f" · context over MCP ({via})"
    )
    print(text)
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    chunks = found["chunks"]
    if chunks:
        print(f"\nSources ({found['tokens']} tokens of context; * cited in the answer)")
    else:
        print("\nSources: none this agent may use for this question")
    for c in chunks:
        notes = [c["classification"]] + [f"{r['type']} redacted x{r['count']}" for r in c["redactions"]]
        notes += [c["label"]] if c.get("label") else []
        notes += [f"ACL: {' '.join(c['receipt']['admitted_by'])}"] if c["receipt"].get("admitted_by") else []
        mark = "*" if c["n"] in cited else " "
        print(f"  [{c['n']}]{mark} {c['dataset']}: {c['receipt']['source_uri']} ({', '.join(notes)})")
        print(f"       {c['chunk_id']} · receipt {c['receipt']['decision_id']}")
    if found.get("withheld"):
        print("\nWithheld by policy (reason codes; `explain(dataset=...)` says why in words)")
        for w in found["withheld"]:
            print(f"  {w['dataset']} ({', '.join(w['classifications'])}): {', '.join(w['reasons'])}")
    print(f"\ndecision {found['decision_id']} · policy {found['policy_revision']} · index v{found['index_version']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question")
    parser.add_argument("--url", default=os.environ.get("AQUIFER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--stdio", action="store_true", help="Start `aquifer mcp` and talk to it over stdio.")
    parser.add_argument("--agent", default="support_assistant", help="Whose demo token and first purpose to use.")
    parser.add_argument("--purpose", help="Default: the agent's first purpose.")
    parser.add_argument("--as", dest="as_user", help="Act for this demo user (a token from the development IdP).")
    parser.add_argument("--top-k", type=int, default=6, help="Sources to retrieve at most.")
    parser.add_argument("--context-tokens", type=int, default=1024, help="Token budget of the sources.")
    parser.add_argument("--max-tokens", type=int, default=256, help="Longest answer, in model tokens.")
    parser.add_argument("--model-url", help="The model's OpenAI-compatible URL. Default: its registered endpoint.")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        catalog = load_catalog(settings.catalog_dir)
        entry = catalog.agents.get(args.agent)
        if entry is None:
            raise Failure(f"agent {args.agent} is not registered in {settings.catalog_dir}/agents")
        args.purpose = args.purpose or entry.purposes[0]
        token = os.environ.get("AQUIFER_AGENT_TOKEN") or agent_token(args.agent, settings)
        user = user_token(args.as_user, catalog, settings)
        if user is None and (path := os.environ.get("AQUIFER_USER_TOKEN_FILE")):
            try:
                user = Path(path).read_text().strip()
            except OSError as exc:
                raise Failure(f"AQUIFER_USER_TOKEN_FILE: cannot read {path}: {exc.strerror}") from None
        found = asyncio.run(search(args, token, user))
        text = answer(catalog, found, args)
    except (Failure, AskError) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 1
    show(found, text, "stdio" if args.stdio else args.url.rstrip("/") + "/mcp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
