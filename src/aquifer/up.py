"""``aquifer up``: run Aquifer's long-lived processes together and stop them together.

Each service runs in its own session (process group), so Ctrl-C reaches only this supervisor, which then sends
SIGINT to every group, waits, and escalates to SIGTERM and SIGKILL: nothing is left orphaned. If one service dies,
the others are stopped and its exit status is returned. If the supervisor itself is killed outright, each service
gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``).

Each service writes to its own log file (``<data_dir>/logs/<service>.log``), so the terminal keeps only what a
person reads: the summary (URLs, demo tokens, a command to try) once everything answers, and the tail of a
service's log if it dies. :func:`aquifer_services` is what ``aquifer up`` runs.
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
from pathlib import Path
from typing import BinaryIO

import httpx


@dataclass
class Service:
    """One supervised process. With a ``url`` it is ready once ``url + ready_path`` answers below 500; without one
    (a worker serving no HTTP, such as the decision-log shipper) once it is started and alive."""

    name: str
    argv: list[str]
    url: str | None
    ready_path: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None


def aquifer_services(
    data_dir: Path,
    *,
    ui_port: int,
    api_port: int,
    model_port: int,
    model_argv: list[str] | None,
    idp_port: int | None = None,
    ship_decisions: bool = False,
) -> list[Service]:
    """The Dagster UI, the API, (given its argv) the local model, (given its port) the development IdP and (given
    ``ship_decisions``: an OTLP endpoint is configured) the decision-log shipper, each logging to
    ``<data_dir>/logs/``."""
    bin_dir = Path(sys.executable).parent
    logs = data_dir / "logs"
    # the checkout's workspace.yaml where there is one; an installed package names its code location itself
    location = ["-w", "workspace.yaml"] if Path("workspace.yaml").is_file() else ["-m", "pipelines.definitions"]
    dagster = [str(bin_dir / "dagster"), "dev", *location, "-h", "127.0.0.1", "-p", str(ui_port)]
    services = [
        Service("dagster", dagster, f"http://127.0.0.1:{ui_port}", "/server_info", log=logs / "dagster.log"),
        Service(
            "api",
            [sys.executable, "-m", "aquifer", "serve", "--port", str(api_port)],
            f"http://127.0.0.1:{api_port}",
            "/healthz",
            log=logs / "api.log",
        ),
    ]
    if idp_port is not None:
        services.insert(
            0,
            Service(
                "idp",
                [sys.executable, "-m", "aquifer", "idp", "serve", "--port", str(idp_port), "--log-level", "warning"],
                f"http://127.0.0.1:{idp_port}",
                "/healthz",
                log=logs / "idp.log",
            ),
        )
    if model_argv is not None:
        services.append(
            Service("model", model_argv, f"http://127.0.0.1:{model_port}", "/v1/models", log=logs / "model.log")
        )
    if ship_decisions:
        argv = [sys.executable, "-m", "aquifer", "ship-decisions"]
        services.append(Service("ship-decisions", argv, None, log=logs / "ship-decisions.log"))
    return services


def _ready(service: Service) -> bool:
    if service.url is None:
        return service.proc is not None and service.proc.poll() is None
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
            output = _open_log(s.log) if s.log else None
            s.proc = subprocess.Popen(
                s.argv,
                env={**os.environ, **s.env},
                start_new_session=True,
                preexec_fn=_die_with_parent,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
            )
            if output:
                output.close()  # the child holds its own descriptor
        announced = False
        started = time.monotonic()
        while not stopping:
            for s in services:
                assert s.proc is not None
                code = s.proc.poll()
                if code is not None:
                    _say(f"{s.name} exited with status {code}; stopping the others")
                    if s.log:
                        _say(f"the end of {s.log}:\n{_tail(s.log)}")
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


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("ab")
    f.write(f"\n==== started {time.strftime('%Y-%m-%d %H:%M:%S %z')} ====\n".encode())
    f.flush()
    return f


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


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
