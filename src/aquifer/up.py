"""``aquifer up``: run Aquifer's long-lived processes together and stop them together.

Each service runs in its own session (process group), so Ctrl-C reaches only this supervisor, which then sends
SIGINT to every group, waits, and escalates to SIGTERM and SIGKILL: nothing is left orphaned. If one service dies,
the others are stopped and its exit status is returned. If the supervisor itself is killed outright, each service
gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    ready_path: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None


def _ready(service: Service) -> bool:
    try:
        return httpx.get(service.url + service.ready_path, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop(services: Sequence[Service], *, grace_s: float = 20.0) -> None:
    running = [s for s in services if s.proc is not None and s.proc.poll() is None]
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for s in running:
            assert s.proc is not None
            _signal_group(s.proc, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(s.proc.poll() is None for s in running if s.proc):
            time.sleep(0.2)
        running = [s for s in running if s.proc is not None and s.proc.poll() is None]
        if not running:
            return


def run(services: Sequence[Service], *, on_ready: Callable[[], None], ready_timeout_s: float = 300.0) -> int:
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for s in services:
            s.proc = subprocess.Popen(
                s.argv, env={**os.environ, **s.env}, start_new_session=True, preexec_fn=_die_with_parent
            )
        announced = False
        started = time.monotonic()
        while not stopping:
            for s in services:
                assert s.proc is not None
                code = s.proc.poll()
                if code is not None:
                    _say(f"{s.name} exited with status {code}; stopping the others")
                    return code or 1
            if not announced and all(_ready(s) for s in services):
                with contextlib.suppress(OSError):
                    on_ready()
                announced = True
            elif not announced and time.monotonic() - started > ready_timeout_s:
                _say(f"still waiting for {', '.join(s.name for s in services if not _ready(s))}")
                started = time.monotonic()
            time.sleep(0.5)
        _say("stopping ...")
        return 0
    finally:
        # Whatever ended the loop (Ctrl-C, a dead service, a closed terminal, an exception), stop every group.
        stop(services)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent() -> None:
    """Linux: the service gets SIGTERM if this supervisor dies without stopping it (kill -9, OOM), so even then
    nothing is left running. Elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _say(message: str) -> None:
    with contextlib.suppress(OSError):  # the terminal (or a pipe such as tee) may already be gone
        print(message, file=sys.stderr, flush=True)
