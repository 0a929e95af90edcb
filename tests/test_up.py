"""`aquifer up` (what `make up` ends with): both services come up, and one Ctrl-C stops every process they
started - the Dagster webserver, daemon and code servers included."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True).stdout
    rows = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, pp, _ in rows if pp in frontier} - found
        found |= children
        frontier = children
    return found


def test_up_serves_both_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    ui, api = _free_port(), _free_port()
    env = {**os.environ, "AQUIFER_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    (tmp_path / "dagster").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "aquifer", "up", "--ui-port", str(ui), "--api-port", str(api)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline, ready = time.monotonic() + 180, False
        while time.monotonic() < deadline and not ready:
            try:
                ready = (httpx.get(f"http://127.0.0.1:{ui}/server_info", timeout=1).status_code == 200
                         and httpx.get(f"http://127.0.0.1:{api}/healthz", timeout=1).status_code == 200)  # fmt: skip
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ready, "the Dagster UI and the API did not both come up"
        # no index in an empty data dir: the API is up but says what it lacks
        assert httpx.get(f"http://127.0.0.1:{api}/readyz", timeout=5).status_code == 503
        time.sleep(2)
        started = _descendants(proc.pid)
        assert len(started) >= 3, "dagster dev (webserver, daemon, code server) and the API"
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, output
    assert "Dagster UI" in output and f"http://127.0.0.1:{api}/docs" in output
    time.sleep(1)
    alive = [
        p
        for p in started
        if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
    ]
    assert alive == [], f"left behind: {alive}"
