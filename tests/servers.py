"""Helpers for tests that start real servers (uvicorn, llama.cpp, OPA, `aquifer up`)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, timeout_s: float = 120,
              log: Path | None = None) -> None:  # fmt: skip
    """Until ``url`` answers 200; fails at once if ``proc`` exits, showing its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args!r} exited: {log.read_text() if log else ''}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s:.0f} s: {log.read_text() if log else ''}")
