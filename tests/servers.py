"""Helpers for tests that start real servers (uvicorn, llama.cpp, OPA, `aquifer up`)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def service_env(root: Path, data: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``aquifer serve`` over a copy made by ``tests.conftest.copy_materialized``: its data
    dir, and the catalog and policies copied under ``root``."""
    import os

    return {
        **os.environ,
        "AQUIFER_DATA_DIR": str(data),
        "DAGSTER_HOME": str(data / "dagster"),
        "AQUIFER_POLICY_DIR": str(root / "policies"),
        "AQUIFER_CATALOG_DIR": str(root / "catalog"),
        "AQUIFER_CREDENTIALS_FILE": str(root / "catalog" / "credentials.yaml"),
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def post_context(
    url: str,
    token: str,
    query: str,
    *,
    purpose: str,
    model: str = "local_smollm2",
    user_token: str | None = None,
    top_k: int = 8,
) -> httpx.Response:
    """``POST /v1/context`` with an agent token and, when given, a user token (sent as bytes: a hostile token need
    not be ASCII)."""
    headers: dict[str, str | bytes] = {"Authorization": f"Bearer {token}"}
    if user_token is not None:
        headers["X-Aquifer-User-Token"] = user_token.encode()
    body = {"query": query, "purpose": purpose, "model": model, "top_k": top_k}
    return httpx.post(f"{url}/v1/context", json=body, headers=headers, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(
    url: str, proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, timeout_s: float = 120, log: Path | None = None
) -> None:
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


class Process:
    """A server process with its output in a file (a pipe would fill and block it), stopped by :meth:`stop`."""

    def __init__(self, argv: list[str], log: Path, *, ready: str, env: dict[str, str] | None = None) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        wait_http(ready, self.proc, log=log)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self._log.close()


class AquiferServer(Process):
    """``aquifer serve`` (real uvicorn) on a free port; ``url`` is its root. Ready when ``ready`` answers 200."""

    def __init__(self, env: dict[str, str], log: Path, *, ready: str = "/healthz") -> None:
        import sys

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "aquifer", "serve", "--port", str(port), "--log-level", "warning"]
        super().__init__(argv, log, ready=self.url + ready, env=env)


def llama_server(log: Path) -> tuple[str, Process]:
    """The real llama.cpp server with the local model (SmolLM2) on a free port: its ``/v1`` URL and process."""
    from aquifer.local_model import server_argv

    port = free_port()
    return f"http://127.0.0.1:{port}/v1", Process(
        server_argv(port=port), log, ready=f"http://127.0.0.1:{port}/v1/models"
    )


class RecordingModel:
    """A stand-in for a model endpoint that cannot exist here (an external provider): a small OpenAI-compatible
    server that records every request it receives (path, headers, JSON body) and answers ``reply``, streaming or
    not. ``delay_s`` waits before answering (``stall_after_first`` waits after the first streamed chunk instead);
    ``status`` answers that HTTP error instead."""

    def __init__(self, reply: str = "Recorded answer [1].") -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.reply, self.delay_s, self.stall_after_first, self.status = reply, 0.0, False, 200
        self.requests: list[dict[str, object]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                owner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if owner.status != 200:
                    self._send(owner.status, b'{"error": {"message": "provider failure"}}', "application/json")
                    return
                if not body.get("stream"):
                    time.sleep(owner.delay_s)
                    answer = {
                        "id": "cmpl-rec",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": owner.reply},
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
                    }
                    self._send(200, json.dumps(answer).encode(), "application/json")
                    return
                if not owner.stall_after_first:
                    time.sleep(owner.delay_s)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i, word in enumerate(owner.reply.split(" ")):
                    chunk = {
                        "id": "cmpl-rec",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "delta": {"content": (" " if i else "") + word}, "finish_reason": None}
                        ],
                    }
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                    if owner.stall_after_first:
                        time.sleep(owner.delay_s)
                self.wfile.write(b"data: [DONE]\n\n")

            def _send(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def prompts(self) -> str:
        """Everything every recorded request sent, as one text."""
        import json

        return "\n".join(json.dumps(r["body"], ensure_ascii=False) for r in self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def chromium() -> str | None:
    """Debian's headless Chromium (`make test` installs it where apt can), or None."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str, *, screenshot: Path | None = None, budget_ms: int = 15000) -> str:
    """The DOM of ``url`` after its scripts ran, in headless Chromium with every host but loopback unresolvable
    (as on an air-gapped machine); a screenshot too when ``screenshot`` is given."""
    import tempfile

    browser = chromium()
    assert browser, "no chromium"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--virtual-time-budget={budget_ms}",
        "--window-size=1400,1000",
    ]
    outputs = [["--dump-dom"]] + ([[f"--screenshot={screenshot}"]] if screenshot is not None else [])
    dom = ""
    for output in outputs:
        with tempfile.TemporaryDirectory() as profile:
            argv = [browser, *flags, f"--user-data-dir={profile}", *output, url]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        dom = dom or done.stdout
    return dom
