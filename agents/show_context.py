"""Ask Aquifer for governed context as a demo agent and print it with its citations.

    python -m agents.show_context "How do refunds work?"                       # support_assistant
    python -m agents.show_context --agent hr_case_assistant --as amira.haddad --as ben.okafor "conduct complaint"

Uses the library's typed client; the agent's purpose and model default to its first purpose and default model in
``catalog/agents/<agent>.yaml``. The token is ``AQUIFER_TOKEN``, else the demo agent's development-only token.
Each ``--as`` asks the same question on behalf of another demo user (their token from the development IdP), so two
users of one agent can be compared: each chunk shows which ACL entry admitted it.
"""

from __future__ import annotations

import argparse
import os
import sys

from aquifer.ask import AskError, agent_token, user_token
from aquifer.catalog import load_catalog
from aquifer.client import AquiferClient, AquiferError
from aquifer.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question")
    parser.add_argument("--agent", default="support_assistant")
    parser.add_argument("--purpose", help="Default: the agent's first purpose.")
    parser.add_argument("--model", help="Default: the agent's default model.")
    parser.add_argument("--url", default=os.environ.get("AQUIFER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--as", dest="as_users", action="append", help="A demo user to ask for (repeatable).")
    args = parser.parse_args(argv)
    settings = get_settings()
    catalog = load_catalog(settings.catalog_dir)
    agent = catalog.agent(args.agent)
    purpose, model = args.purpose or agent.purposes[0], args.model or agent.default_model
    status = 0
    for as_user in args.as_users or [None]:
        try:
            token = agent_token(args.agent, settings)
            with AquiferClient(args.url, token=token, user_token=user_token(as_user, catalog, settings)) as aquifer:
                answer = aquifer.context(args.question, purpose=purpose, model=model, top_k=args.top_k)
        except AskError as exc:
            print(exc, file=sys.stderr)
            return 1
        except AquiferError as exc:
            print(f"refused ({exc.status} {exc.error}): {exc.detail}", file=sys.stderr)
            for code, why in zip(exc.reasons, exc.explanations, strict=False):
                print(f"  {code}: {why}", file=sys.stderr)
            status = 1
            continue
        on_behalf = f" for {answer.user}" if answer.user else ""
        print(
            f"{args.agent}{on_behalf} ({purpose}, {model}, {answer.locality}): {len(answer.chunks)} chunks, "
            f"{answer.tokens} tokens, decision {answer.decision_id}"
        )
        for i, chunk in enumerate(answer.chunks, 1):
            redacted = ", ".join(f"{r.count} {r.type}" for r in chunk.redactions) or "nothing"
            admitted = f", admitted by {' '.join(chunk.receipt.admitted_by)}" if chunk.receipt.admitted_by else ""
            where = f"{chunk.dataset} ({chunk.classification}), score {chunk.score:.3f}"
            print(f"[{i}] {where}, redacted: {redacted}{admitted}")
            print(f"    {chunk.text[:160].replace(chr(10), ' ')}...")
            print(f"    source {chunk.receipt.source_uri} sha256 {chunk.receipt.source_sha256[:12]}...")
        for withheld in answer.withheld:
            print(f"  withheld {withheld.dataset}: {', '.join(withheld.reasons)}")
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
