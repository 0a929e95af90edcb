"""What every command shares: the root Typer app, the consoles, and how a command fails."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="Aquifer: governed, traceable context for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(width=160) if not sys.stdout.isatty() else Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)
