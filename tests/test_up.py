"""`aquifer up` (what `make up` ends with): the UI, the API and the local model come up, and one Ctrl-C stops
every process they started - the Dagster webserver, daemon and code servers and the llama.cpp server included."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, wait_http
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True).stdout
    rows = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, pp, _ in rows if pp in frontier} - found
        found |= children
        frontier = children
    return found


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return "zombie"


def test_up_serves_all_three_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    ui, api, model = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "AQUIFER_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "HF_HUB_OFFLINE": "1",
    }
    (tmp_path / "dagster").mkdir()
    argv = [
        sys.executable,
        "-m",
        "aquifer",
        "up",
        "--ui-port",
        str(ui),
        "--api-port",
        str(api),
        "--model-port",
        str(model),
    ]
    log = (tmp_path / "up.log").open("w")  # a file, not a pipe: a full pipe would block every service's logging
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        # the development IdP serves where catalog/identity.yaml's development_only issuer says
        for probe in (f"{ui}/server_info", f"{api}/healthz", f"{model}/v1/models", "8790/healthz"):
            wait_http(f"http://127.0.0.1:{probe}", proc, timeout_s=180, log=tmp_path / "up.log")
        # no index in an empty data dir: the API is up but says what it lacks
        assert httpx.get(f"http://127.0.0.1:{api}/readyz", timeout=5).status_code == 503
        time.sleep(2)
        started = _descendants(proc.pid)
        assert len(started) >= 5, "dagster dev (webserver, daemon, code server), the API, the model and the IdP"
        discovery = httpx.get("http://127.0.0.1:8790/.well-known/openid-configuration", timeout=5).json()
        assert discovery["issuer"] == "http://127.0.0.1:8790"
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:  # a failed assertion above: stop it the way a user would, then make sure
            left = _descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    log.close()
    output = (tmp_path / "up.log").read_text()
    assert proc.returncode == 0, output
    assert "Dagster UI" in output and f"http://127.0.0.1:{api}/docs" in output
    assert f"http://127.0.0.1:{model}/v1" in output
    for agent, token in DEV_TOKENS.items():  # the demo tokens, in full, to paste
        assert f"{agent}" in output and token in output
    # each service logs to its own file: the terminal is the summary, not 2,200 lines of llama.cpp loading
    assert len(output.splitlines()) < 40, output
    logs = tmp_path / "data" / "logs"
    assert "Uvicorn running" in (logs / "model.log").read_text()
    assert "Uvicorn running" in (logs / "api.log").read_text()
    assert "dagster" in (logs / "dagster.log").read_text().lower()
    assert "logs: idp.log, dagster.log, api.log, model.log in " in output
    assert "Dev IdP" in output and "--as amira.haddad" in output
    time.sleep(1)
    alive = [
        p
        for p in started
        if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
    ]
    assert alive == [], f"left behind: {alive}"
