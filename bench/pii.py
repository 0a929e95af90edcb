"""PII detector benchmark: ``aquifer.pii.detect_many`` throughput, single core.

Not a test: run ``python bench/pii.py`` (``--docs 2000 --runs 3``).  Prints the median of the runs for
each corpus, all ~600-character texts built from a fixed seed:

* ``pii``    every text carries 1-3 PII values (Faker, seeded) inside product/support prose;
* ``clean``  product prose only: product names, dates, versions, prices, ticket ids, timestamps;
* ``mixed``  40% ``pii`` / 60% ``clean``, the pipeline benchmark's mix.

Throughput is given per wall second and per CPU second of this one-thread process; the CPU figure is
single-core time and is less disturbed by other work on the machine.

Also measured, once each: the module's import time and its first call (which imports presidio and
builds the recognizers), a per-pattern cost breakdown, and two presidio baselines on a sample:
``AnalyzerEngine.analyze`` with the same recognizers, and presidio's phonenumbers-based
``PhoneRecognizer`` alone (why phones are matched by regex first).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from faker import Faker

PROSE = (
    "The Tidewater Platform {v} release on {d} updates the Data Retention Policy for all workspaces.",
    "Pricing for the Enterprise Plan stays at ${p} per seat per year, billed annually.",
    "See ticket T-{t} for the rollout checklist and the Change Advisory Board notes.",
    "The nightly sync started at {ts} and finished within the usual window.",
    "Connector Hub now retries failed batches three times with exponential backoff.",
    "Version {v} deprecates the Legacy Export API; migrate to Export Jobs before {d}.",
    "Usage Analytics shows a {n}% increase in scheduled pipelines since the Spring Release.",
    "The Security Review Board approved the new Single Sign-On flow on {d}.",
    "Customer Success will host Office Hours every Tuesday at 10:00 for the Migration Program.",
    "Storage Tiering moves partitions older than {n} days to cold storage automatically.",
    "Incident INC-{t} was resolved after the Query Engine cache was rebuilt at {ts}.",
    "The Admin Console lists every API token with its scopes, owner team and expiry date.",
    "Release Notes for {v}: faster Delta merges, fewer small files and a new Lineage Explorer.",
    "Workspaces on the Starter Plan keep {n} days of run history; Growth keeps 400 days.",
    "Quarterly Business Review slides are due on {d}; use the Product Roadmap template.",
)
PII_SENTENCES = (
    "Customer {name} ({email}, {phone}) asked us to update the billing contact.",
    "Please reply to {email}; my direct line is {phone}.",
    "Updated home address to {address}.",
    "Employee provided SSN {ssn} for the benefits carrier form.",
    "Refund the duplicate charge to card {card} and confirm by email.",
    "Wire the deposit to IBAN {iban} before the end of the month.",
    "Suspicious sign-in for {name} from IP {ip} was blocked.",
    "Spoke with {name} about the renewal; call back on {phone}.",
    "Thanks,\n{name}",
)
PHONE_FORMATS = ("({a}) {b}-{c}", "{a}-{b}-{c}", "+1 {a} {b} {c}", "{a}.{b}.{c}")


def _prose(rng: random.Random) -> str:
    template = rng.choice(PROSE)
    return template.format(
        v=f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        d=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        p=f"{rng.randint(1, 9)},{rng.randint(0, 999):03d}.00",
        t=f"{rng.randint(0, 999999):06d}",
        ts=f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        n=rng.randint(2, 95),
    )


def _pii_values(fake: Faker, rng: random.Random) -> dict[str, str]:
    first, last = fake.first_name(), fake.last_name()
    phone = rng.choice(PHONE_FORMATS).format(
        a=rng.choice((415, 212, 617, 312, 206, 512)), b=rng.randint(200, 999), c=f"{rng.randint(0, 9999):04d}"
    )
    return {
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}@{fake.free_email_domain()}",
        "phone": phone,
        "address": f"{fake.building_number()} {fake.last_name()} {rng.choice(('St', 'Ave', 'Rd', 'Blvd', 'Ln'))}, "
        f"{fake.city()}, {fake.state_abbr()} {fake.postcode()}",
        "ssn": fake.ssn(),
        "card": fake.credit_card_number(card_type="visa16"),
        "iban": fake.iban(),
        "ip": fake.ipv4_public(),
    }


def build_corpus(kind: str, n: int, seed: int, length: int = 600) -> list[str]:
    rng = random.Random(f"{kind}-{seed}")
    fake = Faker("en_US")
    fake.seed_instance(seed)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        if kind == "pii":
            values = _pii_values(fake, rng)
            parts.extend(s.format(**values) for s in rng.sample(PII_SENTENCES, rng.randint(1, 3)))
        while sum(len(p) + 1 for p in parts) < length:
            parts.insert(rng.randrange(len(parts) + 1), _prose(rng))
        texts.append(" ".join(parts))
    return texts


def timed(fn: Callable[[], object], runs: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds per run."""
    out = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def import_seconds(preload: str = "") -> tuple[float, float]:
    """(import of src/aquifer/pii.py alone, its first detect() call), in a fresh interpreter.

    The module is loaded from its file because ``import aquifer`` runs the package __init__
    (polars, pydantic, the catalog), which is not this module's cost.  ``preload`` is imported
    before the clock starts (stdlib modules the application has loaded anyway).
    """
    path = Path(__file__).resolve().parent.parent / "src" / "aquifer" / "pii.py"
    code = (
        f"import sys, time, importlib.util{', ' + preload if preload else ''}\n"
        "t = time.perf_counter()\n"
        f"spec = importlib.util.spec_from_file_location('pii_probe', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['pii_probe'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "t1 = time.perf_counter(); mod.detect('warm up'); t2 = time.perf_counter()\n"
        "print(t1 - t, t2 - t1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def per_pattern(texts: Sequence[str]) -> dict[str, float]:
    """Microseconds of CPU per document spent in each pattern's fast path (gates, scan, validation).

    Gate results shared between patterns are cached per text, so the first pattern using a shape
    pays for it.
    """
    from aquifer import pii
    from aquifer.pii import _engine as fast

    costs = {}
    docs = [fast._Doc(t) for t in texts]
    for fr in fast.fast_engine():
        for pattern in fr.patterns:
            best = float("inf")
            for _ in range(3):
                out: list[list[tuple[float, int, int, int]]] = [[] for _ in docs]
                start = time.process_time()
                fast._pattern_candidates(fr, pattern, docs, out, gated=True)
                best = min(best, time.process_time() - start)
            costs[f"{pii.PII_TYPES[fr.type_index]}: {pattern.name}"] = best / len(docs) * 1e6
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents per corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline-docs", type=int, default=100, help="docs for the slow presidio baselines")
    args = parser.parse_args()

    import_s, first_call_s = import_seconds()
    warm_import_s, _ = import_seconds(preload="importlib.metadata, dataclasses")
    print(
        f"import of the module: {import_s * 1000:.0f} ms in a bare interpreter,"
        f" {warm_import_s * 1000:.0f} ms with importlib.metadata and dataclasses already loaded;"
        f" first detect() (presidio import + engine build): {first_call_s:.2f} s"
    )

    from aquifer import pii

    pii.detect("warm up")
    pii_texts = build_corpus("pii", args.docs, args.seed)
    clean_texts = build_corpus("clean", args.docs, args.seed)
    n_pii = round(args.docs * 0.4)
    mixed = pii_texts[:n_pii] + clean_texts[: args.docs - n_pii]
    random.Random(args.seed).shuffle(mixed)
    avg = statistics.mean(len(t) for t in pii_texts + clean_texts)
    print(f"corpora: {args.docs} docs each, {avg:.0f} chars avg; median of {args.runs} runs, one process, one thread")
    print(f"  {'corpus':<14} {'docs/s wall':>12} {'docs/s CPU':>11} {'us/doc CPU':>11}")
    for name, texts in (("pii", pii_texts), ("clean", clean_texts), ("mixed 40% pii", mixed)):
        wall, cpu = medians(timed(lambda t=texts: pii.detect_many(t), args.runs))  # type: ignore[misc]
        found = sum(1 for spans in pii.detect_many(texts) if spans)
        print(
            f"  {name:<14} {len(texts) / wall:>12,.0f} {len(texts) / cpu:>11,.0f} {cpu / len(texts) * 1e6:>11.1f}"
            f"  ({found}/{len(texts)} docs with PII found)"
        )

    print("per pattern, us/doc CPU (pii / clean):")
    on_pii, on_clean = per_pattern(pii_texts[:500]), per_pattern(clean_texts[:500])
    for name in on_pii:
        print(f"  {name:<62} {on_pii[name]:6.1f} / {on_clean[name]:6.1f}")
    print(f"  {'sum':<62} {sum(on_pii.values()):6.1f} / {sum(on_clean.values()):6.1f}")

    sample = pii_texts[: args.baseline_docs]
    engine = pii.build_analyzer_engine()
    _, cpu = medians(timed(lambda: [engine.analyze(t, language="en") for t in sample], args.runs))
    print(f"baseline presidio AnalyzerEngine (same recognizers, no NLP): {len(sample) / cpu:,.0f} docs/s CPU on pii")
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    phone = PhoneRecognizer()
    # presidio annotates nlp_artifacts without Optional but documents and handles None.
    _, cpu = medians(timed(lambda: [phone.analyze(t, ["PHONE_NUMBER"], None) for t in sample], args.runs))  # type: ignore[arg-type]
    print(f"baseline presidio PhoneRecognizer (phonenumbers, 8 regions) alone: {len(sample) / cpu:,.0f} docs/s CPU")


if __name__ == "__main__":
    main()
