"""Users and document ACLs (issue 12): what acting for a user costs a request, whether the ACL prefilter keeps
filtered recall, which predicate form LanceDB answers fastest, and what verifying a user token costs.

Not a test: run ``python bench/acl.py`` after ``aquifer materialize`` has built the real index of the sample corpus
(``--source-index``; the index must have the ``acl``/``acl_listed`` columns). Like ``bench/retrieval.py`` (whose
``build`` it reuses) the 100,000-chunk index is **derived from real chunk embeddings**: copies of real platinum
chunks, renamed, their vectors perturbed. Then every chunk's ACL is replaced with a generated one, seeded: 1-5
groups out of ``group:g000`` ... ``group:g199``, drawn without replacement with Zipf-like weights (group k has
weight 1/(k+1)^s, s = 1 by default), so a few groups are on many documents and most on few, as in real
organisations. Users are in 1-10 groups drawn the same way, plus two made to be extreme: one in the ten most common
groups, one in only the rarest.

Tables (same rows, same vector index; only what the item says differs):

* ``acl``: every chunk listed (``acl_listed`` true), the store's own indexes (``LanceDBStore.ensure_indexes``:
  IVF_HNSW_SQ, BTree on ``class_key`` and ``fresh_until``);
* ``open``: a copy of ``acl`` whose ``acl_listed`` is false everywhere (no document restricts anyone): the
  agent-only baseline;
* ``acl_labellist``: ``acl`` plus a LanceDB ``LabelList`` index on ``acl``;
* ``acl_labellist_bitmap``: that plus a ``Bitmap`` index on ``acl_listed``;
* ``open_labellist_bitmap``: ``open`` with the same two extra indexes (the baseline for that index set).

Measured, all with the real parts (LanceDB, the embedding model, the Rego engine, the development IdP over HTTP):

1. in process, ``Retriever.context`` for agent ``support_assistant`` (``acts_for: either``): agent-only on ``open``
   against user-bound on ``acl`` (ACL prefilter, per-chunk re-decision with the user in the input), the same pair
   on the tables with the extra indexes, user-bound on ``open`` and agent-only on ``acl`` (which admits nothing:
   no ACL names the agent); interleaved, warm (every (user, query) pair run once before timing). Then each user's
   *new* questions (their prefilter warm, the per-chunk decisions not), and the first request of a new user (cold),
   split into its parts;
2. filtered recall@10 of the ANN search (the store's nprobes and refine factor) against exact search
   (``bypass_vector_index``) with the same ``where`` (the user's class keys and ACL predicate), per user;
3. ANN search latency for each predicate form on each table, with the plan LanceDB chose;
4. ``UserVerifier.verify`` per call with a warm key cache (ES256, RS256), against bare ``jwt.decode``.

Results are printed as JSON and written to ``<work-dir>/results.json`` (default ``bench/results/acl``). The tables
stay under ``<work-dir>/tables`` and a later run with the same size, groups, exponent, seed and source index version
reuses them; ``--skip`` leaves parts out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aquifer.embedding import Embedder  # noqa: E402
from aquifer.index.lancedb import ROWS_PER_PARTITION, LanceDBStore, _quoted, _sql_acl, _sql_in  # noqa: E402
from bench.retrieval import AGENT, MODEL, PURPOSE, QUESTIONS, build, pct  # noqa: E402

TABLES = ("acl", "open", "acl_labellist", "acl_labellist_bitmap", "open_labellist_bitmap")
SERVED = ("acl", "open", "acl_labellist_bitmap", "open_labellist_bitmap")
"""The tables a Retriever serves (the in-process arms)."""
ARMS = {
    # name: (table, user-bound)
    "agent_open": ("open", False),
    "user_acl": ("acl", True),
    "agent_open_labellist_bitmap": ("open_labellist_bitmap", False),
    "user_acl_labellist_bitmap": ("acl_labellist_bitmap", True),
    "user_open": ("open", True),
    "agent_acl": ("acl", False),
}
COMPARE = (
    # (candidate, baseline): p50 ratio and median of the per-pair ratios, both from the same interleaved rounds
    ("user_acl", "agent_open"),
    ("user_acl_labellist_bitmap", "agent_open_labellist_bitmap"),
    ("user_open", "agent_open"),
    ("user_acl_labellist_bitmap", "agent_open"),
    ("agent_open_labellist_bitmap", "agent_open"),
    ("agent_acl", "agent_open"),
)


# -- data ------------------------------------------------------------------------------------------------------------


def zipf_weights(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def draw_sets(rng: np.random.Generator, count: int, weights: np.ndarray, lo: int, hi: int) -> list[list[int]]:
    """``count`` sets of lo..hi (uniform) distinct indexes, each drawn without replacement with probability
    proportional to ``weights`` (Gumbel top-k: exact for sampling without replacement)."""
    sizes = rng.integers(lo, hi + 1, size=count)
    log_w = np.log(weights)[None, :]
    out: list[list[int]] = []
    for start in range(0, count, 20_000):
        m = min(count, start + 20_000) - start
        keys = log_w + rng.gumbel(size=(m, len(weights)))
        top = np.argsort(-keys, axis=1)[:, :hi]
        out.extend(sorted(row[:k].tolist()) for row, k in zip(top, sizes[start : start + m], strict=True))
    return out


def group(i: int) -> str:
    return f"g{i:03d}"


def make_tables(
    source: LanceDBStore, work: Path, n: int, *, groups: int, zipf: float, seed: int
) -> tuple[dict[str, Path], dict[str, Any]]:
    """The four tables of the module docstring under ``work/tables``, and how long each step took."""
    import lancedb
    from lancedb.index import Bitmap, LabelList

    base = work / "tables"
    paths = {name: base / name for name in TABLES}
    meta_file = base / "meta.json"
    meta = {"n": n, "groups": groups, "zipf": zipf, "seed": seed, "source_version": source.version()}
    if meta_file.exists() and all(p.exists() for p in paths.values()):
        stored = json.loads(meta_file.read_text())
        if stored.get("params") == meta:
            return paths, stored["info"] | {"reused": True}
    shutil.rmtree(base, ignore_errors=True)
    info: dict[str, Any] = {}
    t = time.perf_counter()
    build(source, paths["acl"], n, seed=seed)
    info["derive_rows_s"] = time.perf_counter() - t

    t = time.perf_counter()
    rng = np.random.default_rng(seed + 1)
    sets = draw_sets(rng, n, zipf_weights(groups, zipf), 1, 5)
    db = lancedb.connect(str(paths["acl"]))
    table = db.open_table("chunks").to_arrow()
    acl = pa.array([[f"group:{group(g)}" for g in s] for s in sets], pa.list_(pa.string()))
    table = table.set_column(table.schema.get_field_index("acl"), "acl", acl)
    table = table.set_column(
        table.schema.get_field_index("acl_listed"), "acl_listed", pa.array(np.ones(n, dtype=bool), pa.bool_())
    )
    db.drop_table("chunks")
    db.create_table("chunks", data=table)
    del table
    info["write_acls_s"] = time.perf_counter() - t
    counts = np.bincount(np.concatenate([np.asarray(s) for s in sets]), minlength=groups)
    info["acl_stats"] = {
        "groups_per_chunk_mean": float(np.mean([len(s) for s in sets])),
        "chunks_listing_top_group": float(counts[0] / n),
        "chunks_listing_10th_group": float(counts[9] / n),
        "chunks_listing_median_group": float(np.median(counts) / n),
        "chunks_listing_rarest_group": float(counts.min() / n),
        "distinct_acls": len({tuple(s) for s in sets}),
    }

    store = LanceDBStore(str(paths["acl"]), ann_min_rows=0)
    info["store_indexes"] = store.ensure_indexes()

    t = time.perf_counter()
    shutil.copytree(paths["acl"], paths["open"])
    tbl = lancedb.connect(str(paths["open"])).open_table("chunks")
    # data evolution: a new column file, same rows and row ids, so the vector index stays valid
    tbl.drop_columns(["acl_listed"])
    tbl.add_columns({"acl_listed": "false"})
    info["open_copy_s"] = time.perf_counter() - t

    shutil.copytree(paths["acl"], paths["acl_labellist"])
    t = time.perf_counter()
    lancedb.connect(str(paths["acl_labellist"])).open_table("chunks").create_index("acl", config=LabelList())
    info["labellist_index_s"] = time.perf_counter() - t
    shutil.copytree(paths["acl_labellist"], paths["acl_labellist_bitmap"])
    t = time.perf_counter()
    tbl = lancedb.connect(str(paths["acl_labellist_bitmap"])).open_table("chunks")
    tbl.create_index("acl_listed", config=Bitmap())
    info["bitmap_index_s"] = time.perf_counter() - t
    shutil.copytree(paths["open"], paths["open_labellist_bitmap"])
    tbl = lancedb.connect(str(paths["open_labellist_bitmap"])).open_table("chunks")
    tbl.create_index("acl", config=LabelList())
    tbl.create_index("acl_listed", config=Bitmap())
    info["indexes"] = {
        name: sorted(f"{i.name}:{i.index_type}" for i in lancedb.connect(str(p)).open_table("chunks").list_indices())
        for name, p in paths.items()
    }
    meta_file.write_text(json.dumps({"params": meta, "info": info}, indent=1, default=str))
    return paths, info


def draw_users(rng: np.random.Generator, count: int, groups: int, zipf: float, prefix: str) -> dict[str, list[str]]:
    sets = draw_sets(rng, count, zipf_weights(groups, zipf), 1, 10)
    return {f"{prefix}{i:02d}": [group(g) for g in s] for i, s in enumerate(sets)}


# -- configuration: a catalog copy whose identity points at a development IdP started here ---------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(work: Path, issuer: str, users: dict[str, list[str]]) -> tuple[Path, Path, Path]:
    """catalog/ and policies/ copied into ``work``, identity.yaml's development issuer moved to ``issuer``; a users
    file for the IdP. Returns (catalog, policies, users file)."""
    import yaml

    catalog, policies = work / "catalog", work / "policies"
    for src, dst in ((ROOT / "catalog", catalog), (ROOT / "policies", policies)):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lock", "*.tmp"))
    identity_file = catalog / "identity.yaml"
    identity = yaml.safe_load(identity_file.read_text())
    dev = [i for i in identity["issuers"] if i.get("development_only")]
    assert dev, f"{identity_file}: no development_only issuer to point at the bench's IdP"
    dev[0]["issuer"] = issuer
    identity_file.write_text(yaml.safe_dump(identity, sort_keys=False))
    users_file = work / "users.json"
    doc = {"users": {name: {"name": name, "groups": gs} for name, gs in users.items()}}
    users_file.write_text(json.dumps(doc, indent=1))
    return catalog, policies, users_file


# -- measurement helpers ---------------------------------------------------------------------------------------------


def summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(values_ms), "p99_ms": pct(list(values_ms), 0.99), "n": len(values_ms)}


def stage_p50(stages: Sequence[dict[str, float]]) -> dict[str, float]:
    names = sorted({k for s in stages for k in s})
    return {k: statistics.median([s.get(k, 0.0) for s in stages]) for k in names}


def where_for(classes: Sequence[str], principals: Sequence[str], form: str) -> str:
    cls = f"({_sql_in('class_key', classes)})"
    if form == "class_only":
        return cls
    if form == "array_has_any":  # the store's form (LanceDBStore.search)
        return f"{cls} AND {_sql_acl(principals)}"
    if form == "or_array_has":
        ors = " OR ".join(f"array_has(acl, {_quoted([p])})" for p in principals)
        return f"{cls} AND (NOT acl_listed OR {ors})"
    if form == "array_has_any_no_listed_term":  # what a sentinel principal for unlisted documents would give
        return f"{cls} AND array_has_any(acl, make_array({_quoted(principals)}))"
    raise ValueError(form)


FORMS = ("class_only", "array_has_any", "or_array_has", "array_has_any_no_listed_term")


# -- 1. in process ---------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, paths: dict[str, Path], catalog: Path, policies: Path) -> None:
        from aquifer.service.retrieval import Retriever
        from aquifer.settings import Settings

        self.embedder = Embedder()
        self.retrievers: dict[str, Any] = {}
        for name in SERVED:
            settings = Settings(
                data_dir=args.work_dir / "serve" / name,
                catalog_dir=catalog,
                policy_dir=policies,
                credentials_file=catalog / "credentials.yaml",
                index_uri=str(paths[name]),
                index_ann_min_rows=0,
            )
            self.retrievers[name] = Retriever(settings, embedder=self.embedder)

    def call(self, arm: str, query: str, user: Any) -> tuple[float, dict[str, float], int]:
        from aquifer.service.metrics import Timings
        from aquifer.service.schemas import ContextRequest

        table, bound = ARMS[arm]
        timings = Timings()
        request = ContextRequest(query=query, purpose=PURPOSE, model=MODEL, top_k=10)
        start = time.perf_counter()
        response = self.retrievers[table].context(AGENT, request, timings, user=user if bound else None)
        elapsed = (time.perf_counter() - start) * 1000
        return elapsed, {k: v * 1000 for k, v in timings.seconds.items()}, len(response.chunks)


def interleaved(
    bench: Bench, arms: Sequence[str], pairs_by_round: Sequence[Sequence[tuple[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Every pair of every round through every arm, the arm order rotated per pair (A, B, ... then B, ..., A)."""
    lat: dict[str, list[float]] = {a: [] for a in arms}
    stages: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    chunks: dict[str, list[int]] = {a: [] for a in arms}
    for r, pairs in enumerate(pairs_by_round):
        for i, (query, user) in enumerate(pairs):
            shift = (r + i) % len(arms)
            for arm in [*arms[shift:], *arms[:shift]]:
                ms, st, n = bench.call(arm, query, user)
                lat[arm].append(ms)
                stages[arm].append(st)
                chunks[arm].append(n)
    out: dict[str, Any] = {}
    for arm in arms:
        out[arm] = summary(lat[arm]) | {
            "stage_p50_ms": stage_p50(stages[arm]),
            "chunks_mean": statistics.mean(chunks[arm]),
        }
    out["compare"] = {
        f"{a} vs {b}": {
            "p50_ratio": statistics.median(lat[a]) / statistics.median(lat[b]) - 1,
            "paired_median_ratio": statistics.median([x / y for x, y in zip(lat[a], lat[b], strict=True)]) - 1,
            "p50_diff_ms": statistics.median(lat[a]) - statistics.median(lat[b]),
            "stage_p50_diff_ms": {k: v - out[b]["stage_p50_ms"].get(k, 0.0) for k, v in out[a]["stage_p50_ms"].items()},
        }
        for a, b in COMPARE
        if a in lat and b in lat
    }
    return out


def decisions_needed(bench: Bench, rounds: Sequence[Sequence[tuple[str, Any]]], skip: int) -> dict[str, Any]:
    """Per-chunk decisions a request needs (cache misses), per user in request order, as the engine caches them now
    (per resource, its ACL included) and as it could if a resource's ACL were reduced to the request's principals
    it names (what acl.rego reads): an estimate from the same requests, untimed, the first ``skip`` not counted."""
    from aquifer.service.metrics import Timings
    from aquifer.service.schemas import ContextRequest

    acl = bench.retrievers["acl"]
    seen: dict[str, tuple[set[Any], set[Any]]] = {}
    misses: dict[str, list[int]] = {"as_is": [], "acl_reduced_to_principals": []}
    k = 0
    for pairs in rounds:
        for query, user in pairs:
            request = ContextRequest(query=query, purpose=PURPOSE, model=MODEL, top_k=10)
            got = acl.retrieve(AGENT, request, Timings(), user=user)
            mine = set(user.principals)
            exact, reduced = seen.setdefault(user.subject, (set(), set()))
            keys = set(got.resources)
            canon = {(r.key, tuple(sorted(set(r.acl or ()) & mine))) for r in got.resources}
            if k >= skip:
                misses["as_is"].append(len(keys - exact))
                misses["acl_reduced_to_principals"].append(len(canon - reduced))
            exact |= keys
            reduced |= canon
            k += 1
    return {name: statistics.mean(v) for name, v in misses.items()} | {"requests": len(misses["as_is"])}


def in_process(
    bench: Bench, args: argparse.Namespace, users: dict[str, Any], cold: dict[str, Any], token_of: Callable[[str], str]
) -> dict[str, Any]:
    from aquifer.policy import RequestContext

    names = sorted(users)
    queries = QUESTIONS
    pairs = [(queries[i % len(queries)], users[names[i % len(names)]]) for i in range(len(queries))]
    asked = {(q, u.subject) for q, u in pairs}
    arms = list(ARMS)
    result: dict[str, Any] = {"arms": {a: {"table": t, "user_bound": b} for a, (t, b) in ARMS.items()}}

    # warm: every pair once through every arm, then timed
    interleaved(bench, arms, [pairs])
    result["warm"] = interleaved(bench, arms, [pairs] * args.rounds)

    # the users' new questions: prefilter warm, per-chunk decisions not (a pair is new to the user)
    new_rounds = []
    for r in range(args.unseen_rounds):
        round_pairs = []
        for i in range(len(queries)):
            user = users[names[(i + r) % len(names)]]
            start = i + 7 * (r + 1)
            offsets = range(len(queries))
            q = next(
                queries[(start + j) % len(queries)]
                for j in offsets
                if (queries[(start + j) % len(queries)], user.subject) not in asked
            )
            asked.add((q, user.subject))
            round_pairs.append((q, user))
        new_rounds.append(round_pairs)
    new_arms = ["agent_open", "user_acl", "agent_open_labellist_bitmap", "user_acl_labellist_bitmap"]
    result["new_question"] = interleaved(bench, new_arms, new_rounds)
    result["new_question"]["per_chunk_decisions"] = decisions_needed(bench, [pairs, *new_rounds], len(pairs))

    # the first request of a new user, end to end (the user's token verified first, keys warm)
    acl = bench.retrievers["acl"]
    version = acl.index.version()
    cold_names = sorted(cold)
    half = len(cold_names) // 2
    verify_ms, first, first_stages = [], [], []
    for i, name in enumerate(cold_names[:half]):
        token = token_of(name)
        t = time.perf_counter()
        user = acl.identify(token)
        verify_ms.append((time.perf_counter() - t) * 1000)
        ms, st, _ = bench.call("user_acl", queries[i % len(queries)], user)
        first.append(ms)
        first_stages.append(st)
    # the same, split into its parts (other new users)
    parts: dict[str, list[float]] = {
        "request_decision_ms": [],
        "index_classes_read_ms": [],
        "prefilter_classes_decided_ms": [],
        "allowed_classes_once_decided_ms": [],
        "rest_of_request_ms": [],
        "rest_policy_stage_ms": [],
        "rest_search_stage_ms": [],
    }
    n_classes = 0
    for i, name in enumerate(cold_names[half:]):
        user = acl.identify(token_of(name))
        ctx = RequestContext(AGENT, PURPOSE, MODEL, action="read_context", user=user)
        t = time.perf_counter()
        acl.engine.decide(ctx)
        parts["request_decision_ms"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        classes = acl.index.classes(version=version)
        parts["index_classes_read_ms"].append((time.perf_counter() - t) * 1000)
        n_classes = len(classes)
        t = time.perf_counter()
        acl.engine.decide(ctx, classes)  # what allowed_classes asks the engine
        parts["prefilter_classes_decided_ms"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        acl.allowed_classes(ctx, version)  # reads the classes again; the decisions are cached now
        parts["allowed_classes_once_decided_ms"].append((time.perf_counter() - t) * 1000)
        ms, st, _ = bench.call("user_acl", queries[i % len(queries)], user)
        parts["rest_of_request_ms"].append(ms)
        parts["rest_policy_stage_ms"].append(st.get("policy", 0.0))
        parts["rest_search_stage_ms"].append(st.get("search", 0.0))
    result["new_user"] = {
        "first_request": summary(first) | {"stage_p50_ms": stage_p50(first_stages)},
        "identify_ms_p50": statistics.median(verify_ms),
        "split_p50": {k: statistics.median(v) for k, v in parts.items()},
        "classes_in_index": n_classes,
    }
    # what embedding the query costs (the Retriever caches query vectors, so warm runs above do not pay it)
    embed = []
    for q in queries[:20]:
        t = time.perf_counter()
        bench.embedder.encode([q])
        embed.append((time.perf_counter() - t) * 1000)
    result["embedding_p50_ms"] = statistics.median(embed)
    return result


# -- 2. recall, 3. predicate forms -----------------------------------------------------------------------------------


def search(tbl: Any, q: np.ndarray, where: str, *, exact: bool, nprobes: int, refine: int) -> tuple[list[str], float]:
    query = tbl.search(q).distance_type("cosine").where(where, prefilter=True).limit(10)
    query = query.bypass_vector_index() if exact else query.nprobes(nprobes).refine_factor(refine)
    t = time.perf_counter()
    rows = query.to_arrow()
    ms = (time.perf_counter() - t) * 1000
    return rows.column("chunk_id").to_pylist(), ms


def recall_and_forms(
    bench: Bench,
    args: argparse.Namespace,
    paths: dict[str, Path],
    users: dict[str, Any],
    shares: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    import lancedb

    tables = {name: lancedb.connect(str(p)).open_table("chunks") for name, p in paths.items()}
    nprobes = max(1, args.size // ROWS_PER_PARTITION)  # the store's default: every partition
    refine = bench.retrievers["acl"].settings.index_refine_factor
    queries = bench.embedder.encode((QUESTIONS * 3)[: args.queries])
    ranked = sorted(users, key=lambda n: shares[n]["admitted_of_allowed_classes"])
    picks = sorted({ranked[round(i)] for i in np.linspace(0, len(ranked) - 1, args.recall_users)}, key=ranked.index)

    recall: dict[str, Any] = {
        "nprobes": nprobes,
        "refine_factor": refine,
        "queries": len(queries),
        "users": {},
    }
    all_hits: dict[str, list[float]] = {"acl": [], "acl_labellist_bitmap": []}
    for name in picks:
        user = users[name]
        classes = shares[name]["classes"]
        where = where_for(classes, user.principals, "array_has_any")
        hits: dict[str, list[float]] = {"acl": [], "acl_labellist_bitmap": []}
        exact_ms, short = [], 0
        for q in queries:
            truth, ms = search(tables["acl"], q, where, exact=True, nprobes=nprobes, refine=refine)
            exact_ms.append(ms)
            short += len(truth) < 10
            for table in hits:
                got, _ = search(tables[table], q, where, exact=False, nprobes=nprobes, refine=refine)
                hits[table].append(len(set(got) & set(truth)) / max(1, len(truth)))
        for table in hits:
            all_hits[table].extend(hits[table])
        recall["users"][name] = {
            "groups": len(user.groups),
            "admitted_share_of_all_chunks": shares[name]["admitted_of_all"],
            "admitted_share_of_allowed_classes": shares[name]["admitted_of_allowed_classes"],
            "recall_at_10": statistics.mean(hits["acl"]),
            "recall_at_10_min": min(hits["acl"]),
            "recall_at_10_labellist_bitmap": statistics.mean(hits["acl_labellist_bitmap"]),
            "exact_p50_ms": statistics.median(exact_ms),
            "queries_with_fewer_than_10_admitted": short,
        }
    recall["overall"] = {t: statistics.mean(h) for t, h in all_hits.items()}
    recall["worst_user"] = min(r["recall_at_10"] for r in recall["users"].values())

    # 3. predicate forms: ANN search p50 per (table, form), interleaved, users cycling through the picked ones
    combos = [(t, f) for t in ("acl", "acl_labellist", "acl_labellist_bitmap") for f in FORMS]
    lat: dict[tuple[str, str], list[float]] = {c: [] for c in combos}
    by_user: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.predicate_rounds + 1):  # round 0 warms
        for i, q in enumerate(queries):
            name = picks[i % len(picks)]
            user, classes = users[name], shares[name]["classes"]
            shift = (r + i) % len(combos)
            for table, form in [*combos[shift:], *combos[:shift]]:
                _, ms = search(
                    tables[table],
                    q,
                    where_for(classes, user.principals, form),
                    exact=False,
                    nprobes=nprobes,
                    refine=refine,
                )
                if r:
                    lat[(table, form)].append(ms)
                    by_user.setdefault((table, form, name), []).append(ms)
    name = picks[len(picks) // 2]
    forms: dict[str, Any] = {"p50_ms": {}, "p99_ms": {}, "vs_class_only": {}, "plan": {}, "p50_ms_by_user": {}}
    for table, form in combos:
        key = f"{table}/{form}"
        forms["p50_ms"][key] = statistics.median(lat[(table, form)])
        forms["p99_ms"][key] = pct(lat[(table, form)], 0.99)
        forms["vs_class_only"][key] = forms["p50_ms"][key] / statistics.median(lat[(table, "class_only")]) - 1
        forms["p50_ms_by_user"][key] = {u: statistics.median(by_user[(table, form, u)]) for u in picks}
        where = where_for(shares[name]["classes"], users[name].principals, form)
        plan = (
            tables[table].search(queries[0]).where(where, prefilter=True).limit(10).nprobes(nprobes).explain_plan(True)
        )
        forms["plan"][key] = {
            "acl_by_scalar_index": "(LabelList)" in plan,
            "acl_listed_by_scalar_index": "(Bitmap)" in plan,
            # what the scalar indexes do not answer is evaluated on the rows they selected (a scan of the column)
            "refine_filter": next(
                (ln.split("refine_filter=")[1].strip() for ln in plan.splitlines() if "refine_filter=" in ln), None
            ),
            "scalar_index_query": next((ln.strip() for ln in plan.splitlines() if "ScalarIndexQuery" in ln), None),
        }
    return recall, forms


# -- 4. JWT verification ---------------------------------------------------------------------------------------------


def jwt_cost(catalog: Path, idp: Any, retriever: Any, username: str, calls: int, blocks: int) -> dict[str, Any]:
    import jwt

    from aquifer.catalog import load_catalog
    from aquifer.identity.verify import UserVerifier

    identity = load_catalog(catalog).identity
    issuer = next(i for i in identity.issuers if i.development_only)
    verifier = UserVerifier(identity, production=False)
    keys = {k["kid"]: jwt.PyJWK(k) for k in idp.jwks()["keys"]}
    tokens = {alg: idp.make_token(username, alg=alg) for alg in ("ES256", "RS256")}
    fns: dict[str, Callable[[], Any]] = {}
    for alg, token in tokens.items():
        verifier.verify(token)  # fetches discovery and the JWKS once: from here on the key cache is warm
        key = keys[jwt.get_unverified_header(token)["kid"]]
        fns[f"verify_{alg}"] = lambda token=token: verifier.verify(token)
        retriever.identify(token)
        fns[f"retriever_identify_{alg}"] = lambda token=token: retriever.identify(token)
        fns[f"jwt_decode_{alg}"] = lambda token=token, key=key, alg=alg: jwt.decode(
            token, key, algorithms=[alg], audience=issuer.audiences, issuer=issuer.issuer, leeway=issuer.leeway_s
        )
    fetches_before = idp.jwks_requests
    samples: dict[str, list[float]] = {k: [] for k in fns}
    per_block = max(1, calls // blocks)
    clock = time.perf_counter
    for _ in range(blocks):
        for name, fn in fns.items():
            for _ in range(per_block):
                t = clock()
                fn()
                samples[name].append((clock() - t) * 1000)
    out: dict[str, Any] = {
        "calls_each": per_block * blocks,
        "groups_in_token": len(jwt.decode(tokens["ES256"], options={"verify_signature": False})["groups"]),
    }
    for name, values in samples.items():
        out[name] = {"p50_ms": statistics.median(values), "p99_ms": pct(values, 0.99)}
    for alg in tokens:
        out[f"verify_overhead_{alg}_ms"] = out[f"verify_{alg}"]["p50_ms"] - out[f"jwt_decode_{alg}"]["p50_ms"]
    out["jwks_fetches_during_timing"] = idp.jwks_requests - fetches_before
    return out


# -- main ------------------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("lancedb", "pylance", "pyarrow", "regopy", "PyJWT", "cryptography"):
        with contextlib.suppress(Exception):
            out[pkg] = version(pkg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="Chunks in the derived index.")
    parser.add_argument("--source-index", type=Path, default=ROOT / "data" / "index")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "results" / "acl")
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--zipf", type=float, default=1.0, help="Exponent s of the group weights 1/(k+1)^s.")
    parser.add_argument("--users", type=int, default=24, help="Drawn users (plus two extreme ones).")
    parser.add_argument("--cold-users", type=int, default=20, help="New users for the first-request cost.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds of the 40 warm (user, query) pairs.")
    parser.add_argument("--unseen-rounds", type=int, default=3, help="Rounds of 40 questions new to their user.")
    parser.add_argument("--queries", type=int, default=40, help="Queries for recall and predicate forms.")
    parser.add_argument("--recall-users", type=int, default=6)
    parser.add_argument("--predicate-rounds", type=int, default=3)
    parser.add_argument("--jwt-calls", type=int, default=3000, help="Timed calls per variant.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip", nargs="*", default=[], choices=["in_process", "recall", "jwt"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    source = LanceDBStore(str(args.source_index))
    if not source.exists():
        sys.exit(f"no index at {args.source_index}: run `aquifer materialize` first")
    if "acl_listed" not in source.table().schema.names:
        sys.exit(f"the index at {args.source_index} has no acl_listed column: materialize it with this code")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
        "command": " ".join(["python", "bench/acl.py", *sys.argv[1:]]),
        "versions": versions(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    t = time.perf_counter()
    paths, results["tables"] = make_tables(
        source, args.work_dir, args.size, groups=args.groups, zipf=args.zipf, seed=args.seed
    )
    results["tables"]["total_s"] = time.perf_counter() - t
    print(json.dumps({"tables": results["tables"]}, indent=1, default=str), flush=True)

    from aquifer.identity.devidp import DevIdP

    rng = np.random.default_rng(args.seed + 2)
    drawn = draw_users(rng, args.users, args.groups, args.zipf, "bench-u")
    drawn["bench-broad"] = [group(i) for i in range(10)]
    drawn["bench-narrow"] = [group(args.groups - 1)]
    cold = draw_users(rng, args.cold_users, args.groups, args.zipf, "bench-new")
    issuer = f"http://127.0.0.1:{free_port()}"
    catalog, policies, users_file = write_config(args.work_dir, issuer, drawn | cold)
    shutil.rmtree(args.work_dir / "serve", ignore_errors=True)
    idp = DevIdP(issuer=issuer, data_dir=args.work_dir / "idp", users_file=users_file, environment="development")
    server = idp.start()
    try:
        bench = Bench(args, paths, catalog, policies)
        acl = bench.retrievers["acl"]
        users = {name: acl.identify(idp.make_token(name)) for name in drawn}
        version = acl.index.version()
        tbl = acl.index.table()
        total = tbl.count_rows()
        shares: dict[str, dict[str, Any]] = {}
        for name, user in users.items():
            from aquifer.policy import RequestContext

            classes, _ = acl.allowed_classes(RequestContext(AGENT, PURPOSE, MODEL, user=user), version)
            in_classes = tbl.count_rows(where_for(classes, (), "class_only"))
            admitted = tbl.count_rows(where_for(classes, user.principals, "array_has_any"))
            shares[name] = {
                "classes": classes,
                "groups": len(user.groups),
                "admitted_of_all": tbl.count_rows(_sql_acl(user.principals)) / total,
                "admitted_of_allowed_classes": admitted / max(1, in_classes),
                "chunks_admitted": admitted,
            }
        agent_classes, _ = acl.allowed_classes(RequestContext(AGENT, PURPOSE, MODEL), version)
        results["users"] = {
            "agent_only_allowed_classes": len(agent_classes),
            "agent_only_chunks_in_allowed_classes": tbl.count_rows(where_for(agent_classes, (), "class_only")),
            "by_user": {
                n: {k: v for k, v in s.items() if k != "classes"} | {"classes": len(s["classes"])}
                for n, s in shares.items()
            },
        }
        if "in_process" not in args.skip:
            results["in_process"] = in_process(bench, args, users, cold, idp.make_token)
            print(json.dumps({"in_process": results["in_process"]}, indent=1, default=str), flush=True)
        if "recall" not in args.skip:
            results["recall"], results["predicate_forms"] = recall_and_forms(bench, args, paths, users, shares)
            print(json.dumps({k: results[k] for k in ("recall", "predicate_forms")}, indent=1), flush=True)
        if "jwt" not in args.skip:
            results["jwt"] = jwt_cost(catalog, idp, acl, "bench-broad", args.jwt_calls, blocks=6)
            print(json.dumps({"jwt": results["jwt"]}, indent=1), flush=True)
    finally:
        server.stop()
    out = args.work_dir / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
