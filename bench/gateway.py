"""Gateway benchmark: what the governed gateway costs in front of the local model, and what its context saves.

Not a test: run ``python bench/gateway.py`` (``make bench-gateway``) after ``make up`` or ``aquifer materialize`` has
built the index of the sample corpus. It starts its own llama.cpp server (SmolLM2-135M-Instruct, the local model)
and two ``aquifer serve`` processes over a private copy of the catalog (one per context order), so it does not
disturb a running ``make up``.

1. **Overhead.** For each question, the gateway's exact upstream request is captured once (through a recording
   stand-in model), then the same request is streamed (a) through the gateway and (b) directly to llama.cpp, in
   alternating order, each after a cache-clearing request, so neither reuses the other's prompt. Time to first
   token and total time, medians, and their ratio.
2. **Context economics.** Tokens of context per answer (embedding tokenizer) as the gateway sends it (top k, then
   near-duplicate collapse and the token budget) vs naive top k (same query, same k, neither), in process.
3. **Prompt-cache reuse.** A 5-turn conversation through the gateway (each turn's sources anchored before that
   turn, in the stable order) against the usual RAG proxy, emulated with the same retrieval and rendering: one
   context block at the top, re-retrieved every turn for the whole conversation, in relevance order and in the
   stable order, sent directly to llama.cpp. llama.cpp logs, per request, how many prompt tokens matched its cache
   (``Llama.generate: N prefix-match hit, remaining M prompt tokens to eval``); reuse = N / (N + M).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aquifer.settings import Settings  # noqa: E402
from tests.servers import AquiferServer, RecordingModel, llama_server  # noqa: E402

TOKEN = "aq_devsupport_development-only-support-assistant"
QUESTIONS = [
    "How do refunds work?",
    "How do I reset my password?",
    "How do I set up single sign-on?",
    "Why was my invoice rejected?",
    "What are the API rate limits?",
    "How do I delete a workspace?",
    "How do I export the audit log?",
    "Why is the dashboard slow?",
]
CONVERSATION = [
    "How do refunds work?",
    "How long does a refund take to arrive?",
    "What about refunds for duplicate charges?",
    "Are invoices paid by bank transfer refunded differently?",
    "Can I get a refund after downgrading my plan?",
]
PREFIX = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")


def stream_timed(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, float, str]:
    """(time to first content token, total time, text) of one streamed chat completion."""
    start = time.perf_counter()
    first, text = None, []
    with httpx.stream(
        "POST", url + "/chat/completions", json={**body, "stream": True}, headers=headers, timeout=300
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            piece = chunk["choices"][0]["delta"].get("content") if chunk.get("choices") else None
            if piece:
                first = first or time.perf_counter()
                text.append(piece)
    end = time.perf_counter()
    return (first or end) - start, end - start, "".join(text)


def clear_cache(llama: str) -> None:
    body = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "ok"}], "max_tokens": 1}
    httpx.post(llama + "/chat/completions", json=body, timeout=120).raise_for_status()


def catalog_copy(root: Path, llama: str, recorder: str) -> Path:
    catalog = root / "catalog"
    shutil.copytree(ROOT / "catalog", catalog)
    local = yaml.safe_load((catalog / "models" / "local_smollm2.yaml").read_text())
    (catalog / "models" / "local_smollm2.yaml").write_text(yaml.safe_dump({**local, "endpoint": llama}))
    recording = {**local, "id": "bench_recorder", "endpoint": recorder, "description": "captures requests"}
    (catalog / "models" / "bench_recorder.yaml").write_text(yaml.safe_dump(recording))
    support = yaml.safe_load((catalog / "agents" / "support_assistant.yaml").read_text())
    support["models"].append("bench_recorder")
    (catalog / "agents" / "support_assistant.yaml").write_text(yaml.safe_dump(support))
    return catalog


def start_api(root: Path, catalog: Path, data: Path) -> tuple[str, AquiferServer]:
    env = {
        **os.environ,
        "AQUIFER_DATA_DIR": str(data),
        "AQUIFER_CATALOG_DIR": str(catalog),
        "AQUIFER_DECISION_LOG_DIR": str(root / "decisions"),
        "HF_HUB_OFFLINE": "1",
    }
    server = AquiferServer(env, root / "api.log", ready="/readyz")
    return server.url + "/v1", server


def overhead(api: str, llama: str, recorder: RecordingModel, max_tokens: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Aquifer-Purpose": "customer_support"}
    rows = []
    for i, question in enumerate(QUESTIONS):
        ask = {"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens, "temperature": 0}
        httpx.post(
            api + "/chat/completions", json={**ask, "model": "bench_recorder"}, headers=auth, timeout=120
        ).raise_for_status()
        direct_body = {**recorder.requests[-1]["body"], "model": "smollm2-135m-instruct"}
        runs: dict[str, tuple[float, float, str]] = {}
        for way in ("gateway", "direct") if i % 2 == 0 else ("direct", "gateway"):
            clear_cache(llama)
            if way == "gateway":
                runs[way] = stream_timed(api, {**ask, "model": "local_smollm2"}, auth)
            else:
                runs[way] = stream_timed(llama, direct_body, {})
        row: dict[str, Any] = {"question": question, "same_answer": runs["gateway"][2] == runs["direct"][2]}
        for way, (ttft, total, _) in runs.items():
            row.update({f"{way}_ttft": ttft, f"{way}_total": total})
        rows.append(row)
    med = {
        k: statistics.median(r[k] for r in rows)
        for k in ("gateway_ttft", "direct_ttft", "gateway_total", "direct_total")
    }
    return {
        "rows": rows,
        **med,
        "ttft_ratio": med["gateway_ttft"] / med["direct_ttft"],
        "total_ratio": med["gateway_total"] / med["direct_total"],
        "same_answers": sum(r["same_answer"] for r in rows),
    }


def economics(data: Path) -> dict[str, Any]:
    from aquifer.service.metrics import Timings
    from aquifer.service.retrieval import Retriever
    from aquifer.service.schemas import ContextRequest

    base = Settings(data_dir=data, decision_log_dir=Path(tempfile.mkdtemp()) / "decisions")
    governed = Retriever(base)
    naive = Retriever(
        base.model_copy(update={"near_duplicate_similarity": 2.0}),
        embedder=governed.embedder,
        engine=governed.engine,
        index=governed.index,
        log=governed.log,
    )
    rows = []
    for question in QUESTIONS + CONVERSATION[1:]:
        ask = {"query": question, "purpose": "customer_support", "model": "local_smollm2", "top_k": base.gateway_top_k}
        sent = governed.context(
            "support_assistant", ContextRequest(**ask, max_tokens=base.gateway_context_tokens), Timings()
        )
        top_k = naive.context("support_assistant", ContextRequest(**ask), Timings())
        rows.append(
            {
                "question": question,
                "gateway_tokens": sent.tokens,
                "gateway_chunks": len(sent.chunks),
                "naive_tokens": top_k.tokens,
                "naive_chunks": len(top_k.chunks),
                "near_duplicates": sent.near_duplicates,
                "over_budget": sent.over_budget,
            }
        )
    gateway, naive_total = sum(r["gateway_tokens"] for r in rows), sum(r["naive_tokens"] for r in rows)
    return {
        "rows": rows,
        "k": base.gateway_top_k,
        "budget": base.gateway_context_tokens,
        "gateway_median": statistics.median(r["gateway_tokens"] for r in rows),
        "naive_median": statistics.median(r["naive_tokens"] for r in rows),
        "ratio": gateway / naive_total,
    }


def _reuse(llama_log: Path, seen: int, prompt_tokens: int) -> tuple[int, int]:
    hits = PREFIX.findall(llama_log.read_text(errors="replace"))[seen:]
    return (int(hits[-1][0]), int(hits[-1][1])) if hits else (0, prompt_tokens)


def conversation(api: str, llama: str, llama_log: Path, max_tokens: int, mode: str) -> list[dict[str, Any]]:
    """Reuse per turn. ``gateway``: through Aquifer's gateway. ``relevance`` / ``stable``: the usual RAG proxy,
    one block re-retrieved per turn for the conversation (latest turn first) and sent directly to llama.cpp."""
    from aquifer.service.conversation import render_context
    from aquifer.service.schemas import Chunk

    auth = {"Authorization": f"Bearer {TOKEN}", "X-Aquifer-Purpose": "customer_support"}
    messages: list[dict[str, str]] = []
    turns = []
    for question in CONVERSATION:
        messages.append({"role": "user", "content": question})
        seen = len(PREFIX.findall(llama_log.read_text(errors="replace")))
        body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if mode == "gateway":
            answer = httpx.post(
                api + "/chat/completions", headers=auth, timeout=300, json={**body, "model": "local_smollm2"}
            ).json()
            sources = [c["chunk_id"] for c in answer["aquifer"]["citations"]]
        else:
            query = "\n".join(m["content"] for m in reversed(messages) if m["role"] == "user")[:4000]
            found = httpx.post(
                api.removesuffix("/v1") + "/v1/context",
                headers=auth,
                timeout=120,
                json={
                    "query": query,
                    "purpose": "customer_support",
                    "model": "local_smollm2",
                    "top_k": 6,
                    "max_tokens": 1024,
                },
            ).json()
            block, ordered = render_context([Chunk(**c) for c in found["chunks"]], order=mode)
            sources = [c.chunk_id for c in ordered]
            answer = httpx.post(
                llama + "/chat/completions",
                timeout=300,
                json={
                    **body,
                    "model": "smollm2-135m-instruct",
                    "messages": [{"role": "system", "content": block}, *messages],
                },
            ).json()
        messages.append({"role": "assistant", "content": answer["choices"][0]["message"]["content"]})
        cached, fresh = _reuse(llama_log, seen, answer["usage"]["prompt_tokens"])
        turns.append(
            {
                "question": question,
                "prompt_tokens": answer["usage"]["prompt_tokens"],
                "cached": cached,
                "evaluated": fresh,
                "reuse": cached / max(1, cached + fresh),
                "sources": sources,
            }
        )
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--max-tokens", type=int, default=32, help="Answer length in the overhead runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gateway.json")
    parser.add_argument("--parts", default="overhead,cache,economics", help="Comma-separated parts to run")
    args = parser.parse_args()
    if not (args.data_dir / "index").exists():
        sys.exit(f"no index under {args.data_dir}: run `make up` or `aquifer materialize` first")
    root = Path(tempfile.mkdtemp(prefix="aquifer-bench-gateway-"))
    llama, llama_proc = llama_server(root / "llama.log")
    recorder = RecordingModel()
    catalog = catalog_copy(root, llama, recorder.url)
    machine = f"{platform.node()} · {os.cpu_count()} cores · {platform.processor() or platform.machine()}"
    results: dict[str, Any] = {"machine": machine, "command": "python bench/gateway.py"}
    try:
        api, server = start_api(root, catalog, args.data_dir)
        parts = args.parts.split(",")
        if "overhead" in parts:
            results["overhead"] = overhead(api, llama, recorder, args.max_tokens)
            print(json.dumps({k: v for k, v in results["overhead"].items() if k != "rows"}, indent=1), flush=True)
        for mode in ("gateway", "relevance", "stable") if "cache" in parts else ():
            clear_cache(llama)
            results[f"cache_{mode}"] = conversation(api, llama, root / "llama.log", 48, mode)
            print(mode, [f"{t['reuse']:.0%} of {t['prompt_tokens']}" for t in results[f"cache_{mode}"]], flush=True)
        server.stop()
        if "economics" in parts:
            results["economics"] = economics(args.data_dir)
            print(json.dumps({k: v for k, v in results["economics"].items() if k != "rows"}, indent=1))
    finally:
        llama_proc.stop()
        recorder.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
