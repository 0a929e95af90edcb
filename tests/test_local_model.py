"""The local model of `make up`: the real llama.cpp server with SmolLM2-135M-Instruct from the PyPI package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aquifer.catalog import load_catalog
from aquifer.local_model import GGUF_NAME, SERVED_NAME, gguf_path, server_argv
from aquifer.settings import PROJECT_ROOT
from tests.servers import llama_server

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, server = llama_server(tmp_path_factory.mktemp("llama") / "server.log")
    yield url.removesuffix("/v1")
    server.stop()


def test_the_gguf_ships_in_a_python_package() -> None:
    path = gguf_path()
    assert path.name == GGUF_NAME and path.stat().st_size > 50_000_000
    assert "site-packages" in path.parts


def test_the_registered_local_model_is_what_the_server_serves(llama: str) -> None:
    entry = load_catalog(PROJECT_ROOT / "catalog").model("local_smollm2")
    assert entry.locality.value == "local" and entry.served_name == SERVED_NAME
    assert entry.endpoint == "http://127.0.0.1:8080/v1", "the port `aquifer up` serves it on"
    models = httpx.get(f"{llama}/v1/models").json()
    assert [m["id"] for m in models["data"]] == [SERVED_NAME]


def test_chat_completion_answers(llama: str) -> None:
    body = {
        "model": SERVED_NAME,
        "messages": [
            {"role": "system", "content": "Answer briefly. Context: [1] Refunds take 10 business days."},
            {"role": "user", "content": "How long does a refund take?"},
        ],
        "max_tokens": 32,
        "temperature": 0,
    }
    answer = httpx.post(f"{llama}/v1/chat/completions", json=body, timeout=60).json()
    text = answer["choices"][0]["message"]["content"]
    assert text.strip(), answer
    assert answer["usage"]["prompt_tokens"] > 10 and answer["usage"]["completion_tokens"] > 0


def test_a_missing_gguf_is_named(tmp_path: Path) -> None:
    argv = server_argv(model=tmp_path / "nope.gguf")
    assert str(tmp_path / "nope.gguf") in argv
