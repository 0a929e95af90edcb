"""Tests for aquifer.pii: detection per type, false positives, redaction, and that the fast path
gives exactly what presidio's own recognizers give."""

from __future__ import annotations

import itertools
import random
import socket
from collections.abc import Iterator

import pytest
from faker import Faker

from aquifer import pii
from aquifer.pii import PII_TYPES, PiiSpan, detect, detect_many, redact
from aquifer.pii import _engine as fast

SAMPLE = (
    "Customer Jane Miller (jane.miller@example.com, (415) 555-0134) lives at "
    "1234 Maple Ave, Springfield, IL 62704; SSN 123-45-6789"
)


def found(text: str) -> list[tuple[str, str]]:
    return [(s.type, text[s.start : s.end]) for s in detect(text)]


# --- each type, with the exact span text ------------------------------------------------------
@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("person", "Jane Miller"),
        ("email", "jane.miller@example.com"),
        ("phone", "(415) 555-0134"),
        ("address", "1234 Maple Ave, Springfield, IL 62704"),
        ("national_id", "123-45-6789"),
    ],
)
def test_sample_sentence(type_: str, value: str) -> None:
    assert (type_, value) in found(SAMPLE)


def test_sample_sentence_has_nothing_else() -> None:
    assert [t for t, _ in found(SAMPLE)] == ["person", "email", "phone", "address", "national_id"]


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        # person
        ("Ticket escalated by Mr. John Smith yesterday.", "person", "John Smith"),
        ("Dr. Patel reviewed the claim.", "person", "Patel"),
        ("I spoke with Priya Zbrowski about the renewal.", "person", "Priya Zbrowski"),
        ("Thanks,\nMaria Garcia", "person", "Maria Garcia"),
        ("Name: Zoltan Kowalczyk\nPlan: Enterprise", "person", "Zoltan Kowalczyk"),
        ("Approved by Jane Q. Miller MD on Monday.", "person", "Jane Q. Miller MD"),
        ("Dr. Jane Q. Miller Jr. signed the form.", "person", "Jane Q. Miller Jr."),
        ("Regards,\nMary Ann Smith", "person", "Mary Ann Smith"),
        ("Contact Jennifer Lopez-Garcia for access.", "person", "Jennifer Lopez-Garcia"),
        # email
        ("Reply to ops+alerts@mail.example.co.uk please.", "email", "ops+alerts@mail.example.co.uk"),
        # phone
        ("Call 415-555-0134 after 4pm.", "phone", "415-555-0134"),
        ("Call +1 415 555 0134 after 4pm.", "phone", "+1 415 555 0134"),
        ("Call 415.555.0134 after 4pm.", "phone", "415.555.0134"),
        ("Direct line (212)555-0175x5938, mornings.", "phone", "(212)555-0175x5938"),
        ("London office: +44 20 7946 0958.", "phone", "+44 20 7946 0958"),
        ("Mobile 4155550134 is the best number.", "phone", "4155550134"),
        # national_id
        ("Verified SSN 536-22-1234 against payroll.", "national_id", "536-22-1234"),
        ("SSN: 536221234 (on file).", "national_id", "536221234"),
        # address
        (
            "Ship it to 124 Angela Neck Apt. 536\nWest Anita, NH 07129 by Friday.",
            "address",
            "124 Angela Neck Apt. 536\nWest Anita, NH 07129",
        ),
        (
            "Mail the forms to 1600 Pennsylvania Avenue NW, Washington, DC 20500.",
            "address",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        ),
        ("The new office is at 55 West 42nd Street, Suite 300.", "address", "55 West 42nd Street, Suite 300"),
        ("Forward to PSC 0309, Box 8360\nAPO AP 65406 please.", "address", "PSC 0309, Box 8360\nAPO AP 65406"),
        # credit_card (Luhn-valid test numbers)
        ("Charge card 4111 1111 1111 1111 for the renewal.", "credit_card", "4111 1111 1111 1111"),
        ("Card on file: 6011000990139424.", "credit_card", "6011000990139424"),
        ("Amex 3782-822463-10005 was declined.", "credit_card", "3782-822463-10005"),
        ("Mastercard 2221 0000 0000 0009 expires soon.", "credit_card", "2221 0000 0000 0009"),
        # iban
        ("Wire the deposit to DE89 3704 0044 0532 0130 00 2 days from now.", "iban", "DE89 3704 0044 0532 0130 00"),
        ("IBAN GB82WEST12345698765432 confirmed.", "iban", "GB82WEST12345698765432"),
        # ip_address
        ("Sign-in from 203.0.113.42 was blocked.", "ip_address", "203.0.113.42"),
        ("Allow 10.0.0.0/8 on the gateway.", "ip_address", "10.0.0.0/8"),
        ("Client 2001:db8::8a2e:370:7334 connected.", "ip_address", "2001:db8::8a2e:370:7334"),
    ],
)
def test_detects(text: str, type_: str, value: str) -> None:
    assert (type_, value) in found(text)


@pytest.mark.parametrize("phone", ["(415) 555-0134", "415-555-0134", "+1 415 555 0134"])
def test_phone_formats(phone: str) -> None:
    assert found(f"You can reach me at {phone} today.") == [("phone", phone)]


@pytest.mark.parametrize(
    "text",
    [
        "Charge card 4111 1111 1111 1112 for the renewal.",  # Luhn fails
        "Card on file: 6011000990139425.",
        "Mastercard 2221 0000 0000 0008 expires soon.",
        "Wire it to DE89 3704 0044 0532 0130 01.",  # IBAN checksum fails
        "SSN 000-12-3456 is not issued.",  # area 000
        "SSN 666-12-3456 is not issued.",
        "Version 999.888.777.666 is not an IP address.",
        "Phone 123456789 is too short for a number.",
    ],
)
def test_invalid_values_are_not_detected(text: str) -> None:
    assert detect(text) == []


PROSE = [
    "The Tidewater Platform release notes cover the Data Retention Policy.",
    "The Tidewater Platform 1.2.3 release on 2026-03-14 updates the Data Retention Policy.",
    "Pricing for the Enterprise Plan stays at $1,299.00 per seat per year.",
    "See ticket T-000123 for the rollout checklist and the Change Advisory Board notes.",
    "The nightly sync started at 2026-03-14T09:30:00Z and finished at 2026-03-14T10:05:12.123+00:00.",
    "Version 4.12 deprecates the Legacy Export API; migrate to Export Jobs before March 2026.",
    "Customer Success will host Office Hours every Tuesday at 10:00 for the Migration Program.",
    "Storage Tiering moves partitions older than 90 days to cold storage (see RFC 7231, section 6.5.1).",
    "Incident INC-004211 was resolved after the Query Engine cache was rebuilt at 14:05 UTC.",
    "Usage grew 37% quarter over quarter; Q3 revenue was $4.2M across 1,284 accounts.",
    "Invoices are due within 30 days; order 100234 shipped in 3 boxes on 12/05/2026.",
    "Release Notes for 5.0.1: faster Delta merges, fewer small files and a new Lineage Explorer.",
    "Set max_connections=200 and retry 3 times with a 2.5 s backoff; build 20260314.4 passed.",
    "Our Customer Data Platform syncs with the Security Review Board dashboard at 09:00.",
    "Pipeline p-9f8e7d6c completed 1024 tasks in 3h 12m; see dashboard 42 for details.",
    "Product name: Tidewater Platform. Plan name: Enterprise Growth.",
    "Use port 8080 or 443; the API rate limit is 600 requests per 60 seconds.",
]


@pytest.mark.parametrize("text", PROSE)
def test_no_false_positives_on_product_prose(text: str) -> None:
    assert found(text) == []


def test_empty_and_blank() -> None:
    assert detect("") == []
    assert detect("   \n\t") == []
    assert detect_many([]) == []


# --- detect_many, ordering, overlaps ------------------------------------------------------------
def corpus(n: int = 300, seed: int = 11) -> list[str]:
    """Synthetic support/HR texts mixing PII of every type with product prose."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    templates = [
        "Customer {name} ({email}, {phone}) asked to update billing. {prose}",
        "{prose} Please reply to {email}; my direct line is {phone}.",
        "Updated home address to {address}. {prose}",
        "Employee {name} provided SSN {ssn} for the benefits form. {prose}",
        "{prose} Refund card {card} and wire the rest to {iban}.",
        "Suspicious sign-in for {name} from {ip} and {ipv6}. {prose}",
        "Hi,\nThis is {name} from {company}. {prose}\nThanks,\n{name}",
        "{prose} {prose}",
    ]
    out = []
    for _ in range(n):
        values = {
            "name": fake.name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "address": fake.address(),
            "ssn": fake.ssn(),
            "card": fake.credit_card_number(),
            "iban": fake.iban(),
            "ip": fake.ipv4(),
            "ipv6": fake.ipv6(),
            "company": fake.company(),
            "prose": rng.choice(PROSE),
        }
        out.append(rng.choice(templates).format(**values))
    return out


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return corpus()


def test_detect_many_equals_detect(texts: list[str]) -> None:
    batch = texts + texts[:7] + [""]  # repeats and an empty text
    assert detect_many(batch) == [detect(t) for t in batch]


def test_detect_many_results_are_independent() -> None:
    first, second = detect_many([SAMPLE, SAMPLE])
    first.clear()
    assert second == detect(SAMPLE)


def test_spans_sorted_non_overlapping_and_typed(texts: list[str]) -> None:
    total = 0
    for text, spans in zip(texts, detect_many(texts), strict=True):
        total += len(spans)
        for span in spans:
            assert span.type in PII_TYPES
            assert 0 <= span.start < span.end <= len(text)
        for a, b in itertools.pairwise(spans):
            assert a.end <= b.start
    assert total > len(texts)  # the corpus is PII-heavy; guards against a detector finding nothing


def test_overlaps_resolved_by_score_then_length() -> None:
    # "Jessica Lane" is a listed first + last name inside a street address: the address scores
    # higher (0.65 vs 0.6), so the person span loses.
    assert found("Send it to 12 Jessica Lane, Austin, TX 78701.") == [("address", "12 Jessica Lane, Austin, TX 78701")]


# --- redact ---------------------------------------------------------------------------------------
def test_redact_sample() -> None:
    assert redact(SAMPLE, detect(SAMPLE)) == (
        "Customer [PERSON] ([EMAIL], [PHONE]) lives at [ADDRESS]; SSN [NATIONAL_ID]"
    )


@pytest.mark.parametrize("type_", PII_TYPES)
def test_redact_placeholder_per_type(type_: str) -> None:
    assert redact("a XYZ b", [PiiSpan(type_, 2, 5)]) == f"a [{type_.upper()}] b"


def test_redact_selected_types_only() -> None:
    assert redact(SAMPLE, detect(SAMPLE), types={"email", "national_id"}) == (
        "Customer Jane Miller ([EMAIL], (415) 555-0134) lives at "
        "1234 Maple Ave, Springfield, IL 62704; SSN [NATIONAL_ID]"
    )


def test_redact_adjacent_spans_and_edges() -> None:
    text = "ab"
    spans = [PiiSpan("person", 0, 1), PiiSpan("email", 1, 2)]
    assert redact(text, spans) == "[PERSON][EMAIL]"
    assert redact("x@y.io z", [PiiSpan("email", 0, 6)]) == "[EMAIL] z"


def test_redact_leaves_text_without_spans_unchanged() -> None:
    assert redact(PROSE[1], detect(PROSE[1])) == PROSE[1]
    assert redact(SAMPLE, []) == SAMPLE
    assert redact(SAMPLE, detect(SAMPLE), types=set()) == SAMPLE


def test_redact_unsorted_and_overlapping_spans_fail_closed() -> None:
    text = "0123456789"
    spans = [PiiSpan("phone", 6, 8), PiiSpan("person", 0, 4), PiiSpan("email", 2, 6)]
    # The overlapping email span is absorbed into the person placeholder; nothing leaks.
    assert redact(text, spans) == "[PERSON][PHONE]89"


@pytest.mark.parametrize(
    ("spans", "types"),
    [([PiiSpan("person", 0, 99)], None), ([PiiSpan("passport", 0, 1)], None), ([], {"emails"})],
)
def test_redact_rejects_bad_input(spans: list[PiiSpan], types: set[str] | None) -> None:
    with pytest.raises(ValueError):
        redact("short", spans, types)


# --- the fast path is presidio's logic ------------------------------------------------------------
def _as_results(entity: str, spans: Iterator[tuple[float, int, int]]) -> set[tuple[str, int, int, float]]:
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    results = [RecognizerResult(entity, start, end, score) for score, start, end in spans]
    return {(r.entity_type, r.start, r.end, r.score) for r in EntityRecognizer.remove_duplicates(results)}


@pytest.mark.parametrize("type_", PII_TYPES)
def test_fast_path_equals_presidio_analyze(type_: str, texts: list[str]) -> None:
    """Per recognizer, our compiled scans + validation give what its own analyze() gives."""
    fr = next(f for f in fast.fast_engine() if PII_TYPES[f.type_index] == type_)
    entity = fr.recognizer.supported_entities[0]
    extra = [
        SAMPLE,
        *PROSE,
        "Wire to DE89 3704 0044 0532 0130 00 2 days from now.",
        "ssn 536221234",
        # person edge cases: chains of capitalised words, cues next to each other, suffixes
        "Mark Angela Smith met Dr. Jane Q. Miller Jr. and Ms. Lee; hi Ann Lee, from Jane Smith hi Ann Lee.",
        "spoke with Priya Zbrowski, talked to  Maria O'Neil-Smith; Customer: Tom Brady-Jones MD",
        "Name: Zoltan Kowalczyk / Full name = 'Ada Lovelace' / Product name: Tidewater Platform",
        "Dear John McDonald, from Grant Access to Chase Bank; regards,  Mary Ann Smith",
    ]
    docs = [fast._Doc(t) for t in texts + extra]
    ours: list[list[tuple[float, int, int, int]]] = [[] for _ in docs]
    for p in fr.patterns:
        fast._pattern_candidates(fr, p, docs, ours, gated=False)
    compared = 0
    for doc, candidates in zip(docs, ours, strict=True):
        theirs = fr.recognizer.analyze(doc.text, [entity], None)
        expected = {(r.entity_type, r.start, r.end, r.score) for r in theirs if r.score > 0}
        assert _as_results(entity, ((s, a, b) for s, a, b, _ in candidates)) == expected, doc.text
        compared += len(expected)
    assert compared > 0


def test_gates_never_change_results(texts: list[str]) -> None:
    engine = fast.fast_engine()
    extra = ["ssn 536221234 and phone 4155550134", "::1 and fe80::1ff:fe23:4567:890a%eth0", "PO Box 12"]
    batch = texts + PROSE + extra
    assert fast._detect_batch(batch, engine, gated=True) == fast._detect_batch(batch, engine, gated=False)


def test_nanp_shortcut_agrees_with_phonenumbers() -> None:
    """PhoneRecognizer skips phonenumbers for NANP-shaped text, claiming it is always possible."""
    import phonenumbers

    phone = next(f for f in fast.fast_engine() if PII_TYPES[f.type_index] == "phone").recognizer
    rng = random.Random(3)
    forms = [
        "({a}) {b}-{c}",
        "{a}-{b}-{c}",
        "+1 {a} {b} {c}",
        "{a}.{b}.{c}",
        "1-{a}-{b}-{c}",
        "({a}){b}-{c}x{e}",
        "+1 ({a}) {b}-{c} ext. {e}",
        "1 {a} {b} {c}",
    ]
    for _ in range(500):
        text = (
            rng.choice(forms)
            .format(
                a=rng.randint(0, 999),
                b=f"{rng.randint(0, 999):03d}",
                c=f"{rng.randint(0, 9999):04d}",
                e=rng.randint(1, 99999),
            )
            .replace("(0) ", "(000) ")
        )
        if not phone.analyze(text, ["PHONE_NUMBER"], None):
            continue  # not NANP-shaped (e.g. a 1- or 2-digit area code)
        assert phonenumbers.is_possible_number(phonenumbers.parse(text, "US")), text


def test_email_validation_never_uses_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert found("Write to someone.new@startup-example.io today.") == [("email", "someone.new@startup-example.io")]


def test_presidio_analyzer_engine_has_the_same_recognizers() -> None:
    engine = pii.build_analyzer_engine()
    results = engine.analyze(SAMPLE, language="en")
    by_type = {pii.PRESIDIO_ENTITY_TO_PII_TYPE[r.entity_type] for r in results if r.score >= pii.MIN_SCORE}
    assert by_type == {"person", "email", "phone", "address", "national_id"}


def test_detector_version_names_the_libraries() -> None:
    assert pii.DETECTOR_VERSION.startswith("aquifer-pii/")
    for name in ("presidio-analyzer/2.2.", "phonenumbers/", "tldextract/", "faker/"):
        assert name in pii.DETECTOR_VERSION


@pytest.mark.slow
def test_detect_parallel_equals_detect_many(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [
        f"Customer Jane Miller ({i}) wrote from jane{i}@example.com, call (415) 555-01{i % 100:02d}."
        if i % 3
        else f"Release {i} adds SSO."
        for i in range(60)
    ]
    monkeypatch.setattr(fast, "PARALLEL_MIN_TEXTS", 10)
    assert pii.detect_parallel(texts, workers=2) == pii.detect_many(texts)
