"""The fast path: presidio's decision logic (each recognizer's own compiled regexes, validation and context
words) without its per-match bookkeeping, with cheap gates per pattern and batches; tests check it against
presidio's own ``analyze``."""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aquifer.pii.recognizers import (
    _INITIAL,
    _LO,
    _NAME_SUFFIX,
    _PERSON_CUES,
    _SURNAME,
    _UP,
    _alternation,
    _build_recognizers,
    _name_lists,
    _trie_regex,
)
from aquifer.pii.types import (
    _CONTEXT_FACTOR,
    _CONTEXT_PREFIX_WORDS,
    _MIN_SCORE_WITH_CONTEXT,
    MIN_SCORE,
    PII_TYPES,
    PiiSpan,
)

if TYPE_CHECKING:  # imported lazily at runtime: presidio's import costs seconds (spaCy, torch)
    from presidio_analyzer import Pattern, PatternRecognizer

# --------------------------------------------------------------------------------------------
# Fast path.
# --------------------------------------------------------------------------------------------
_Candidate = tuple[float, int, int, int]  # (score, start, end, index into PII_TYPES)
_Spans = list[tuple[int, int]]
_DIGIT: Final = re.compile(r"\d")
_WORD: Final = re.compile(r"\w+")
# Texts are processed in batches, each pattern over the whole batch before the next pattern:
# keeping one compiled pattern hot in the CPU caches measured ~20% faster than running every
# pattern over one text before moving on.
_BATCH: Final = 256


# Cheap facts about a text, computed for every text as bits: a pattern lists the facts it needs.
_HAS_DIGIT: Final = 1
_HAS_AT: Final = 2
_HAS_PLUS: Final = 4
_HAS_COLON: Final = 8
_HAS_DOUBLE_COLON: Final = 16
_HAS_PO: Final = 32
_HAS_BOX: Final = 64
_MAYBE_IPV6: Final = 128  # "::", or six "hhhh:" groups in a row (see _pattern_gates)
_HEX: Final = "[0-9A-Fa-f]{1,4}"
# Six "hhhh:" groups contain this; it starts with ":" so that re skips from colon to colon.
_SIX_HEX_GROUPS: Final = re.compile(f":{_HEX}:{_HEX}:{_HEX}:{_HEX}:{_HEX}:")

_Search = Callable[[str], "re.Match[str] | None"]


class _Doc:
    """A text and the facts gates ask about it, each computed at most once."""

    __slots__ = ("_context", "_lower", "_shapes", "facts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        facts = _HAS_DIGIT if _DIGIT.search(text) is not None else 0
        if "@" in text:
            facts |= _HAS_AT
        if "+" in text:
            facts |= _HAS_PLUS
        if ":" in text:
            facts |= _HAS_COLON
            if "::" in text:
                facts |= _HAS_DOUBLE_COLON | _MAYBE_IPV6
            elif text.count(":") >= 6 and _SIX_HEX_GROUPS.search(text) is not None:
                facts |= _MAYBE_IPV6
        if "PO" in text:
            facts |= _HAS_PO
        if "Box" in text:
            facts |= _HAS_BOX
        self.facts = facts
        self._lower: str | None = None
        self._shapes: dict[int, int] = {}
        self._context: dict[int, bool] = {}

    def shape_at(self, search: _Search) -> int:
        """Where ``search`` first matches, or -1; shared by the patterns that use the same shape."""
        key = id(search)
        at = self._shapes.get(key)
        if at is None:
            m = search(self.text)
            at = self._shapes[key] = -1 if m is None else m.start()
        return at

    def has_context(self, type_index: int, words: tuple[str, ...]) -> bool:
        """Whether any context word of recognizer ``type_index`` occurs in the text as a word."""
        found = self._context.get(type_index)
        if found is None:
            if self._lower is None:
                self._lower = self.text.lower()
            lower = self._lower
            found = self._context[type_index] = any(w in lower and _has_word(lower, w) for w in words)
        return found


def _has_word(text: str, word: str) -> bool:
    """``word`` occurs in ``text`` delimited like ``\\bword\\b`` (a regex for this costs ~13 us)."""
    i = text.find(word)
    while i >= 0:
        j = i + len(word)
        if (i == 0 or not _is_word_char(text[i - 1])) and (j == len(text) or not _is_word_char(text[j])):
            return True
        i = text.find(word, i + 1)
    return False


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_Scan = Callable[[str, int], _Spans]  # (text, position to start scanning at)
_Finditer = Callable[[str, int], Iterator[re.Match[str]]]


@dataclass(frozen=True, slots=True)
class _FastPattern:
    name: str
    score: float
    # Gates: necessary conditions for a match that are cheaper than the pattern (see
    # _pattern_gates); a text failing any of them is skipped.
    needs: int  # _HAS_* bits
    shapes: tuple[_Search, ...]
    needs_context: bool
    # (shape, margin): no match can start more than ``margin`` characters before the first match
    # of ``shape``, so the scan starts there (a regex scan costs per character scanned).
    lead: tuple[_Search, int] | None
    scan: _Scan


@dataclass(frozen=True, slots=True)
class _FastRecognizer:
    type_index: int
    recognizer: PatternRecognizer
    patterns: tuple[_FastPattern, ...]
    validate: Callable[[str], bool | None] | None  # None where presidio's is the no-op default
    invalidate: Callable[[str], bool | None] | None
    context: frozenset[str]
    context_words: tuple[str, ...]


def _finditer_scan(finditer: _Finditer) -> _Scan:
    def scan(text: str, pos: int) -> _Spans:
        return [m.span() for m in finditer(text, pos)]

    return scan


def _whitespace_run_scan(finditer: _Finditer, needle: str) -> _Scan:
    """Run a pattern only on the whitespace-delimited runs of text that contain ``needle``.

    Exact for patterns whose matches contain ``needle`` and no whitespace and whose only
    context-sensitive syntax is ``\\b`` (whitespace is a non-word character, like the ends of a
    slice).  Used for email: presidio's email regex costs ~80 us per 600-char text because it
    tries a backtracking local part at every word; the runs around "@" are a few dozen chars.
    """

    def scan(text: str, pos: int) -> _Spans:
        spans: _Spans = []
        at = text.find(needle, pos)
        while at >= 0:
            start = 1 + max(text.rfind(" ", 0, at), text.rfind("\n", 0, at), text.rfind("\t", 0, at))
            ends = [i for i in (text.find(" ", at), text.find("\n", at), text.find("\t", at)) if i >= 0]
            end = min(ends, default=len(text))
            spans.extend((start + m.start(), start + m.end()) for m in finditer(text[start:end], 0))
            at = text.find(needle, end)
        return spans

    return scan


def _iban_scan(finditer: _Finditer, validate: Callable[[str], bool | None]) -> _Scan:
    """presidio ``IbanRecognizer.analyze`` without its per-match explanation objects.

    Its pattern has three groups (IBAN, one more block, trailing 1-3 chars); for each match it
    tries the longest candidate first and keeps the first one that does not fail validation,
    so "DE89 3704 0044 0532 0130 00 2 days" yields the IBAN without " 2".
    """

    def scan(text: str, pos: int) -> _Spans:
        spans: _Spans = []
        for m in finditer(text, pos):
            start = m.start()
            for group in range(m.re.groups, 0, -1):
                end = m.end(group) if m.end(group) > 0 else m.end()
                if end > start and validate(text[start:end]) is not False:
                    spans.append((start, end))
                    break
        return spans

    return scan


@dataclass(frozen=True, slots=True)
class _Gates:
    needs: int = 0
    shapes: tuple[_Search, ...] = ()
    lead: tuple[_Search, int] | None = None


def _pattern_gates() -> dict[str, _Gates]:
    """Gates by pattern name.

    Each is a necessary condition for its pattern to match at all, so skipping a text that fails
    it never changes results (tests compare gated with ungated runs), and is much cheaper than
    the pattern: a substring test, or one regex pass shared by several patterns.  Patterns that
    can only reach MIN_SCORE with a context word also need one in the text (see _engine).
    """
    import regex

    # Every NANP form ends in ddd[ .-]dddd, at most 9 characters ("+1 (415) ") after its start.
    nanp_tail = regex.compile(r"\d{3}[ .-]\d{4}").search
    # A house number (at most 6 digits, so its last digit is at most 5 characters after the
    # start), then an optional letter and a capitalised or ordinal word.
    street = regex.compile(rf"\d[A-Z]?[ \t]+[\d{_UP}]").search
    state_zip = regex.compile(r",[ \t]*[A-Z]{2}[ \t]+\d{5}").search
    digit = _Gates(_HAS_DIGIT)
    plus = _Gates(_HAS_DIGIT | _HAS_PLUS)
    return {
        "Email (Medium)": _Gates(_HAS_AT),
        "SSN1 (very weak)": digit,
        "SSN2 (very weak)": digit,
        "SSN3 (very weak)": digit,
        "SSN4 (very weak)": digit,
        "SSN5 (medium)": digit,
        "All Credit Cards (weak)": digit,
        "Mastercard 2-series (weak)": digit,
        "IBAN Generic": digit,
        "IPv4": digit,
        "IPv4_mapped": _Gates(_HAS_DOUBLE_COLON | _HAS_DIGIT),
        "IPv6_unspecified": _Gates(_HAS_DOUBLE_COLON),
        "IPv4_embedded": _Gates(_HAS_DIGIT | _MAYBE_IPV6),
        "IPv6": _Gates(_MAYBE_IPV6),
        "phone NANP (medium)": _Gates(_HAS_DIGIT, (nanp_tail,), (nanp_tail, 9)),
        "phone international (medium)": plus,
        "phone E.164 (medium)": plus,
        "phone bare 10 digits (very weak)": digit,
        "address street + common suffix": _Gates(_HAS_DIGIT, (street,), (street, 5)),
        "address street + USPS suffix + city, state, ZIP": _Gates(_HAS_DIGIT, (street, state_zip), (street, 5)),
        "address military": _Gates(_HAS_DIGIT | _HAS_PO),
        "address PO box": _Gates(_HAS_DIGIT | _HAS_BOX),
    }


@functools.cache
def _pattern_recognizer() -> type[PatternRecognizer]:
    from presidio_analyzer import PatternRecognizer

    return PatternRecognizer


def _person_listed_or_cued_scan() -> _Scan:
    """The "listed first + last name" and "cue + listed first name" person patterns, together.

    Both start with a listed first name and score the same, so one scan serves both.  One
    stdlib-``re`` pass finds every position where a listed first name is followed by a capital.
    It is written as one branch per initial letter, each starting with that literal letter, so
    ``re`` scans for the first character in C instead of trying the trie at every position
    (measured 12 us vs 39 us per 600 chars; the ``regex`` module was slower still).  Candidates
    are zero-width after their first letter, so they may overlap.  Each pattern then keeps
    candidates whose surname is listed, or which follow a cue word, and do not overlap its own
    previous match: what ``finditer`` over presidio's pattern yields (tests check this against
    presidio's ``analyze``).
    """
    first_names, last_names = _name_lists()
    by_initial: dict[str, list[str]] = {}
    for name in first_names:
        by_initial.setdefault(name[0], []).append(name[1:])
    branches = []
    for initial, rests in sorted(by_initial.items()):
        rest = _trie_regex([r for r in rests if r]) if any(rests) else ""
        if rest and "" in rests:
            rest += "?"
        letter = re.escape(initial)
        branches.append(rf"{letter}(?<!\w{letter})(?={rest}[ \t][{_UP}])")
    starts = re.compile("|".join(branches)).finditer
    # The pattern's three ways past the first name, in the order its regex tries them.
    first = _trie_regex(first_names)
    tail = rf"[ \t]({_SURNAME})\b({_NAME_SUFFIX})"
    name_at = tuple(re.compile(first + middle + tail).match for middle in (rf"[ \t]{_INITIAL}", rf"[ \t]{first}", ""))
    cues = _alternation(_PERSON_CUES).replace(r"\ ", r"[ \t]+")
    cue_before = re.compile(rf"(?i:\b(?:{cues}))(?:[ \t]*[:,][ \t]*|[ \t]+)\Z").search
    hyphenated = re.compile(f"[{_UP}][{_LO}]+-").match

    def listed_surname(surname: str) -> bool:
        if surname in last_names:
            return True
        # "Miller-Jones": the pattern lists the first half, then allows "-Jones".
        return hyphenated(surname) is not None and surname.split("-", 1)[0] in last_names

    def scan(text: str, pos: int) -> _Spans:
        spans: _Spans = []
        listed_end = cued_end = -1
        for m in starts(text, pos):
            start = m.start()
            names = [n for n in (match(text, start) for match in name_at) if n is not None]
            if not names:
                continue
            if start >= listed_end:
                # The first way whose surname is listed, as the regex backtracks into the next.
                listed = next((n for n in names if listed_surname(n.group(1))), None)
                if listed is not None:
                    listed_end = listed.end(2) if listed.group(2) else listed.end(1)
                    spans.append((start, listed_end))
            if start >= cued_end:
                cue = cue_before(text, max(0, start - 24), start)
                if cue is not None and cue.start() >= cued_end:
                    # Any surname will do: the first way that matches at all.
                    cued_end = names[0].end(2) if names[0].group(2) else names[0].end(1)
                    spans.append((start, cued_end))
        return spans

    return scan


# Patterns the stdlib ``re`` runs faster than ``regex`` (same syntax subset, same flags, same
# matches: the tests compare with presidio's own analyze()).  Measured per 600-char text:
# NANP 13 us with re vs 44 us with regex, whose first-character scan gives up on this pattern.
_STDLIB_RE: Final = frozenset({"phone NANP (medium)"})
_LISTED_PERSON: Final = "person listed first + last name"
_CUED_PERSON: Final = "person cue + listed first name"


_ENGINE_LOCK: Final = threading.Lock()


def fast_engine() -> tuple[_FastRecognizer, ...]:
    # The first call takes seconds; the lock keeps concurrent first callers from each paying it.
    with _ENGINE_LOCK:
        return _build_engine()


@functools.cache
def _build_engine() -> tuple[_FastRecognizer, ...]:
    import regex

    fast: list[_FastRecognizer] = []
    base = _pattern_recognizer()
    gates = _pattern_gates()
    for type_index, recognizer in enumerate(_build_recognizers()):
        cls = type(recognizer)
        validate = recognizer.validate_result if cls.validate_result is not base.validate_result else None
        invalidate = recognizer.invalidate_result if cls.invalidate_result is not base.invalidate_result else None
        patterns: list[_FastPattern] = []
        # presidio sets .patterns in __init__ through an un-annotated branch mypy cannot type.
        presidio_patterns: list[Pattern] = recognizer.patterns  # type: ignore[has-type]
        scores = {p.name: p.score for p in presidio_patterns}
        for pattern in presidio_patterns:
            # Compiled once, with presidio's flags and (but for _STDLIB_RE) its regex engine.
            engine_module: Any = re if pattern.name in _STDLIB_RE else regex
            if pattern.name == _CUED_PERSON:
                continue  # served by the _LISTED_PERSON scan
            if pattern.name == _LISTED_PERSON:
                if scores[_LISTED_PERSON] != scores[_CUED_PERSON]:
                    raise RuntimeError("one scan serves both person patterns: give them one score")
                scan = _person_listed_or_cued_scan()
            else:
                compiled = engine_module.compile(pattern.regex, recognizer.global_regex_flags)
                if pattern.name == "Email (Medium)":
                    scan = _whitespace_run_scan(compiled.finditer, "@")
                elif pattern.name == "IBAN Generic":
                    scan = _iban_scan(compiled.finditer, recognizer.validate_result)
                elif cls.analyze is not base.analyze:
                    raise RuntimeError(f"{cls.__name__} has its own analyze(); give it a scan")
                else:
                    scan = _finditer_scan(compiled.finditer)
            g = gates.get(pattern.name, _Gates())
            # Only a context word can lift such a pattern to MIN_SCORE.
            needs_context = pattern.score < MIN_SCORE and validate is None
            patterns.append(_FastPattern(pattern.name, pattern.score, g.needs, g.shapes, needs_context, g.lead, scan))
        fast.append(
            _FastRecognizer(
                type_index=type_index,
                recognizer=recognizer,
                patterns=tuple(patterns),
                validate=validate,
                invalidate=invalidate,
                context=frozenset(w.strip().lower() for w in recognizer.context or ()),
                context_words=tuple(w.strip().lower() for w in recognizer.context or ()),
            )
        )
    engine = tuple(fast)
    # Exercise every recognizer once so lazy set-up (tldextract's suffix trie, phonenumbers'
    # region metadata) happens here rather than inside the first batch.
    _detect_batch([_WARM_UP], engine)
    return engine


_WARM_UP: Final = (
    "Customer Jane Miller (jane.miller@example.com, (415) 555-0134, +44 20 7946 0958) lives at "
    "1234 Maple Ave, Springfield, IL 62704; SSN 536-22-1234, card 4111 1111 1111 1111, "
    "IBAN GB82 WEST 1234 5698 7654 32, from 203.0.113.42 and 2001:db8::1."
)


def _pattern_candidates(
    fr: _FastRecognizer, p: _FastPattern, docs: Sequence[_Doc], out: Sequence[list[_Candidate]], gated: bool
) -> None:
    """Append to ``out[i]`` what presidio's pattern logic keeps (score > 0) of ``p`` on ``docs[i]``."""
    scan, validate, invalidate = p.scan, fr.validate, fr.invalidate
    type_index, needs, shapes, context, lead = fr.type_index, p.needs, p.shapes, p.needs_context, p.lead
    words = fr.context_words
    for doc, found in zip(docs, out, strict=True):
        pos = 0
        if gated:
            if doc.facts & needs != needs:
                continue
            if context and not doc.has_context(type_index, words):
                continue
            if shapes and not all(doc.shape_at(shape) >= 0 for shape in shapes):
                continue
            if lead is not None:
                pos = max(0, doc.shape_at(lead[0]) - lead[1])
        text = doc.text
        for start, end in scan(text, pos):
            if start == end:
                continue
            score = p.score
            if validate is not None or invalidate is not None:
                matched = text[start:end]
                if validate is not None:
                    verdict = validate(matched)
                    if verdict is not None:
                        score = 1.0 if verdict else 0.0
                if invalidate is not None and score > 0 and invalidate(matched):
                    score = 0.0
            if score > 0:
                found.append((score, start, end, type_index))


def _with_context(candidates: list[_Candidate], text: str, engine: Sequence[_FastRecognizer]) -> None:
    """Presidio's context enhancement (whole words among the 5 before the match), in place.

    Skipped where it cannot change the outcome: a candidate already at MIN_SCORE that overlaps
    no other candidate is chosen with or without the boost.
    """
    for i, (score, start, end, type_index) in enumerate(candidates):
        context = engine[type_index].context
        if not context or score >= 1.0:
            continue
        if score >= MIN_SCORE and not any(s < end and start < e for j, (_, s, e, _) in enumerate(candidates) if j != i):
            continue
        words = _WORD.findall(text, max(0, start - 80), start)[-_CONTEXT_PREFIX_WORDS:]
        if any(w.lower() in context for w in words):
            boosted = max(score + _CONTEXT_FACTOR, _MIN_SCORE_WITH_CONTEXT)
            candidates[i] = (min(boosted, 1.0), start, end, type_index)


def _resolve(candidates: list[_Candidate]) -> list[PiiSpan]:
    """Greedy non-overlapping selection: higher score, then longer, then earlier, then type."""
    candidates.sort(key=lambda c: (-c[0], c[1] - c[2], c[1], c[3]))
    chosen: list[tuple[int, int, int]] = []
    for score, start, end, type_index in candidates:
        if score < MIN_SCORE:
            break  # sorted by score
        if all(end <= s or start >= e for s, e, _ in chosen):
            chosen.append((start, end, type_index))
    chosen.sort()
    return [PiiSpan(PII_TYPES[t], s, e) for s, e, t in chosen]


def _detect_batch(texts: Sequence[str], engine: Sequence[_FastRecognizer], gated: bool = True) -> list[list[PiiSpan]]:
    docs = [_Doc(t) for t in texts]
    candidates: list[list[_Candidate]] = [[] for _ in texts]
    for fr in engine:
        for p in fr.patterns:
            _pattern_candidates(fr, p, docs, candidates, gated)
    results: list[list[PiiSpan]] = []
    for text, found in zip(texts, candidates, strict=True):
        if not found:
            results.append([])
            continue
        if len(found) > 1:
            # The same span from two patterns of one recognizer (e.g. "+1 415 555 0134" is NANP
            # and international): keep the higher score, which is what _resolve would keep.
            best: dict[tuple[int, int, int], _Candidate] = {}
            for c in found:
                key = (c[1], c[2], c[3])
                if key not in best or best[key][0] < c[0]:
                    best[key] = c
            found = list(best.values())
        _with_context(found, text, engine)
        results.append(_resolve(found))
    return results


def detect(text: str) -> list[PiiSpan]:
    """PII spans in ``text``, sorted by start and non-overlapping."""
    return _detect_batch([text], fast_engine())[0]


def detect_many(texts: Sequence[str]) -> list[list[PiiSpan]]:
    """``[detect(t) for t in texts]``, for batches.

    Repeated texts (templates, empty strings, boilerplate) are analysed once, and distinct texts
    in batches of ``_BATCH``, one pattern at a time over the batch.
    """
    engine = fast_engine()
    index: dict[str, int] = {}
    slots = [index.setdefault(t, len(index)) for t in texts]
    unique = list(index)
    results: list[list[PiiSpan]] = []
    for offset in range(0, len(unique), _BATCH):
        results.extend(_detect_batch(unique[offset : offset + _BATCH], engine))
    # A list per input, so mutating one result cannot change another.
    return [list(results[i]) for i in slots]


# Below this many texts a second process costs more (it imports presidio, ~8 s) than it saves.
PARALLEL_MIN_TEXTS: Final = 50_000


def detect_parallel(texts: Sequence[str], *, workers: int | None = None) -> list[list[PiiSpan]]:
    """:func:`detect_many` spread over ``workers`` processes (default: one per CPU) for large batches.

    Detection is a pure function of each text, so splitting the batch changes nothing but the wall time.
    Workers start from a fresh interpreter (``spawn``): forking a process that already runs polars' and the
    tokenizer's thread pools is not safe.
    """
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(texts) < PARALLEL_MIN_TEXTS:
        return detect_many(texts)
    size = -(-len(texts) // workers)
    parts = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
    with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("spawn")) as pool:
        return [spans for part in pool.map(detect_many, parts) for spans in part]
