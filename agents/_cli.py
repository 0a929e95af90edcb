"""What the example agents share: read the question, ask through the gateway, print the answer and its sources."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from aquifer.ask import AskError, ask, show


def run(agent: str, doc: str | None, argv: list[str] | None = None, *, stream: bool = False) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question")
    parser.add_argument("--url", default=os.environ.get("AQUIFER_URL", "http://127.0.0.1:8000") + "/v1")
    parser.add_argument("--model", help="A registered model id. Default: the agent's default model.")
    parser.add_argument("--max-tokens", type=int, default=256, help="Longest answer, in model tokens.")
    parser.add_argument(
        "--as", dest="as_user", help="Ask on behalf of this demo user (a token from the development IdP)."
    )
    args = parser.parse_args(argv)
    console = Console()
    try:
        answer = ask(
            args.question,
            agent=agent,
            base_url=args.url,
            model=args.model,
            max_tokens=args.max_tokens,
            as_user=args.as_user,
            on_text=(lambda piece: print(piece, end="", flush=True)) if stream else None,
        )
    except AskError as exc:
        print(f"{agent}: {exc}", file=sys.stderr)
        return 1
    if stream:
        print()
    show(answer, console, text=not stream)
    return 0
