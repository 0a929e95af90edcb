"""PII detection and redaction for the silver layer.

Silver runs :func:`detect_many` over every record's free text; gold and platinum use the spans to
classify and :func:`redact` them.  Detection is built on `presidio-analyzer`_ recognizers.  spaCy
models cannot be installed here, so presidio's NER is unavailable and every recognizer is a
pattern recognizer (regex + optional checksum/validation), called without NLP artifacts.

API
---
``PII_TYPES``            the eight types this module emits, in a fixed order.
``DETECTOR_VERSION``     recorded in lineage; includes the versions of the libraries whose data
                         (regexes, phone metadata, public-suffix list, name lists) decide results.
``PiiSpan``              ``(type, start, end)``: character offsets into the text, end exclusive.
``detect(text)``         spans sorted by start, never overlapping.
``detect_many(texts)``   ``[detect(t) for t in texts]``, the path to use at scale.
``redact(text, spans, types=None)``  replaces spans by ``[PERSON]``, ``[EMAIL]``, ...
``build_analyzer_engine()``  a presidio ``AnalyzerEngine`` holding the same recognizers (no NLP
                         engine), for presidio-anonymizer interop and as a reference; slow.
``PRESIDIO_ENTITY_TO_PII_TYPE``  presidio entity name -> our type.

Entity mapping (presidio name -> ours)
--------------------------------------
``PERSON`` -> person, ``EMAIL_ADDRESS`` -> email, ``PHONE_NUMBER`` -> phone,
``US_SSN`` -> national_id, ``STREET_ADDRESS`` (ours; presidio's NER uses ``LOCATION``) -> address,
``CREDIT_CARD`` -> credit_card, ``IBAN_CODE`` -> iban, ``IP_ADDRESS`` -> ip_address.

Recognizers, scores and known limits
------------------------------------
Scores are presidio's: a pattern has a base score; a recognizer whose ``validate_result`` returns
True raises it to 1.0, False or ``invalidate_result`` True drops the match.  Context words (each
recognizer's ``CONTEXT``) among the five words before a match add 0.35 (floor 0.4, cap 1.0), the
defaults of presidio's ``LemmaContextAwareEnhancer`` in ``whole_word`` mode (we have no lemmas, so
words are compared lower-cased).  Matches scoring below ``0.4`` are dropped, so the "very weak"
patterns (0.05-0.1) only count with a context word.  Overlaps across recognizers are resolved
greedily: higher score first, then the longer span, then the earlier start, then ``PII_TYPES``
order.

* email - presidio ``EmailRecognizer`` (0.5, RFC-ish regex; validated to 1.0 when the domain has a
  public suffix).  Validation uses tldextract's bundled suffix snapshot: presidio's default
  ``tldextract.extract`` tries to download the list on first use, which fails (with tracebacks)
  offline.  Limit: addresses on unknown TLDs (``user@host.internal``) are not detected.
* national_id - presidio ``UsSsnRecognizer``: ``ddd-dd-dddd`` / ``ddd dd dddd`` / ``ddd.dd.dddd``
  at 0.5; bare ``ddddddddd``, ``ddddd-dddd``, ``ddd-dddddd`` at 0.05 (need "ssn"/"social"/
  "security" context).  Invalid area/group/serial numbers (000, 666, all-zero groups, one repeated
  digit, mixed delimiters) are dropped.  Deviation: presidio also drops the published sample
  numbers (123-45-6789, 078-05-1120, 987-65-4320); we redact them, because a redaction layer must
  fail closed and fixtures/test data use exactly those.  Limits: US SSNs only; an SSN-shaped
  ``ddd-dd-dddd`` product code is a false positive; 9xx (ITIN-range) numbers are accepted.
* credit_card - presidio ``CreditCardRecognizer``: 13-17 digits starting 1/3/4/5/6, optionally
  grouped by spaces/dashes, Luhn-validated (1.0); Luhn failures are dropped.  Added: Mastercard's
  2221-2720 range (4x4 digits, same Luhn check), which presidio's pattern predates.  Limits: any
  such digit run that happens to pass Luhn (1 in 10) is reported; 18-19 digit card numbers are
  missed.
* iban - presidio ``IbanRecognizer``: generic IBAN shape, mod-97 checksum and per-country format
  (1.0).  Limit: upper-case only; IBANs glued to other capital letters are missed.
* ip_address - presidio ``IpRecognizer``: IPv4 (optionally /cidr), IPv6 incl. compressed, mapped
  and embedded forms, validated with :mod:`ipaddress` (0.6; ``::`` alone 0.1).  Limit: four-part
  version numbers (``1.2.3.4``) are indistinguishable from IPv4 and are reported.
* phone - :class:`PhoneRecognizer` (ours, a presidio ``PatternRecognizer``).  presidio's own
  ``PhoneRecognizer`` runs ``phonenumbers.PhoneNumberMatcher`` once per region over the whole
  text: measured ~4-7 ms per 600-char text with its eight default regions (~0.35 ms for US
  alone), 20x our whole budget.  So regexes find candidates and phonenumbers judges only those
  (``parse`` + ``is_possible_number``, region US when there is no ``+CC``): NANP (area code
  2-9xx) ``(415) 555-0134``, ``415-555-0134``, ``415.555.0134``, ``+1 415 555 0134``,
  ``1-415-555-0134``, with ``x123``/``ext. 123`` extensions (0.5); international ``+CC`` grouped
  or compact E.164 (0.5); bare ten digits ``4155550134`` (0.1, needs "phone"/"number"/"call"/
  "mobile"/"cell"/"tel" context).  For NANP-shaped candidates the phonenumbers check is skipped:
  ten national digits are exactly what ``is_possible_number`` checks (a test keeps the two in
  step).  ``is_valid_number`` is not required: it rejects unassigned area/exchange codes, about
  half of Faker's synthetic numbers, and plausible fabricated numbers are still PII to redact.
  Limits: seven-digit local numbers (``555-0134``), national formats without ``+CC`` outside
  NANP (``020 7946 0958``), vanity numbers, bare ten digits without a context word, and an
  international number directly followed by more digit groups are missed; the ``001-`` of
  ``001-415-555-0134`` stays outside the span.
* person - :class:`PersonRecognizer` (ours): no NER model, so names are found with name lists
  and cues.  First and last names are Faker's lists (``en_US``, ``en_GB``, ``en_IE``, ``en_IN``,
  ``es_MX``; single capitalised words only), compiled into trie regexes.  Patterns:
  (a) honorific ``Mr|Mrs|Ms|Mx|Miss|Dr|Prof`` + up to two given names (each optionally followed
  by an initial) + a surname, the span excludes the honorific (0.7); (b) listed first name +
  optional middle initial or listed middle name + listed last name (0.6); (c) cue word (customer,
  client, employee, patient, user, member, contact, agent, manager, applicant, tenant, caller,
  spoke with, talked to, from, dear, hi, hello, thanks, regards, attn, cc) + listed first name +
  optional middle + any capitalised surname, the span excludes the cue (0.6); (d) a label such as
  ``Name:``, ``Full name:``, ``Customer:``, ``Cardholder:`` (not preceded by another word, so not
  "Product name:") + two or three capitalised words (0.6).
  An optional suffix (Jr., Sr., II-IV, MD, DDS, PhD, DVM) is included in the span.  Limits:
  single names ("ask Priya"), names with neither a listed first name nor a cue/honorific/label,
  lower-case or ALL-CAPS names, and non-Latin scripts are missed; first names that are also
  words (Grant, Chase, Mark, Summer...) followed by a listed surname or a cue produce false
  positives ("from Grant Access").
* address - :class:`StreetAddressRecognizer` (ours): US street addresses.  House number +
  optional direction + one to four capitalised words/ordinals + a common suffix (Street/St,
  Avenue/Ave, Road/Rd, Boulevard/Blvd, Lane/Ln, Drive/Dr, Way, Court/Ct, Place/Pl, Terrace,
  Circle, Parkway, Highway, Square, Trail, Alley, Plaza, Loop, ...) + optional unit (Apt, Suite,
  Unit, #...) + optional ``, City, ST 12345`` (0.65); the same with any USPS suffix (Faker's list:
  Neck, Island, Points, ...) only when followed by city, state and ZIP (0.65), because words such
  as "Points" or "Center" are common in prose; APO/FPO/DPO military addresses (0.65); ``PO Box``
  (0.5).  Limits: non-US formats, addresses without a house number, lower-case street names and
  city-only mentions are missed; "10 Data Way"-style phrases are false positives.

Speed
-----
The pipeline benchmark runs 1M records of ~600 chars on 2 cores; ``bench/pii.py`` measures
``detect_many``.  presidio's ``PatternRecognizer.analyze`` builds explanation objects, timestamps
and result objects per pattern and match (``AnalyzerEngine`` with these recognizers: ~1,000
texts/s).  We compile each recognizer's own ``Pattern.regex`` once, with its flags, and call its
``validate_result``/``invalidate_result`` directly: presidio's decision logic without the
bookkeeping (tests check every recognizer against its own ``analyze``).  On top of that:

* gates: each pattern has necessary conditions far cheaper than the pattern (an ``@`` for email,
  ``::`` or six ``hhhh:`` groups for IPv6, a digit, ``ddd-dddd`` for NANP phones, a house number
  followed by a word for addresses, a context word for the very weak patterns); a text failing
  them skips the pattern, and where a pattern cannot match before a gate's first hit, its scan
  starts there.  Tests check that gates never change results.
* engine per pattern: presidio's ``regex`` module, except NANP phones on the stdlib ``re``
  (3x faster there); person candidates via one ``re`` trie scan written so ``re`` can skip to
  candidate initials; email only on the whitespace-delimited runs around ``@``.
* batches: ``detect_many`` deduplicates texts and runs each pattern over 256 texts at a time.

Measured (``bench/pii.py``, 2,000 texts of ~640 chars, one thread, CPU time on a shared 2-core
box): ~6,200 texts/s with PII, ~10,800 without, ~8,400 for the 40% mix; so 1M records take
~2 CPU-minutes, and ``detect_many`` is a pure function of its texts, easy to shard across
processes.  The engine (presidio's import alone takes ~6 s: it imports spaCy and transformers;
building the recognizers ~1 s more) is built on the first call, so importing this module stays
cheap (~20 ms once importlib.metadata is loaded, ~90 ms in a bare interpreter).
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # imported lazily at runtime: presidio's import costs seconds (spaCy, torch)
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer

__all__ = [
    "DETECTOR_VERSION",
    "MIN_SCORE",
    "PII_TYPES",
    "PRESIDIO_ENTITY_TO_PII_TYPE",
    "PiiSpan",
    "build_analyzer_engine",
    "detect",
    "detect_many",
    "detect_parallel",
    "redact",
]

PII_TYPES: tuple[str, ...] = (
    "person",
    "email",
    "phone",
    "national_id",
    "address",
    "credit_card",
    "iban",
    "ip_address",
)

PRESIDIO_ENTITY_TO_PII_TYPE: Final[dict[str, str]] = {
    "PERSON": "person",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "US_SSN": "national_id",
    "STREET_ADDRESS": "address",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "IP_ADDRESS": "ip_address",
}

# Bump when a pattern, score, list or rule here changes.  The library versions are part of the
# version because their data (presidio's regexes, phone metadata, the public-suffix snapshot, the
# name and street-suffix lists) change results too.
_RULES_REVISION: Final = "1"


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


DETECTOR_VERSION: str = (
    f"aquifer-pii/{_RULES_REVISION}"
    f" presidio-analyzer/{_dist_version('presidio-analyzer')}"
    f" phonenumbers/{_dist_version('phonenumbers')}"
    f" tldextract/{_dist_version('tldextract')}"
    f" faker/{_dist_version('faker')}"
)

_PLACEHOLDERS: Final[dict[str, str]] = {t: f"[{t.upper()}]" for t in PII_TYPES}

# presidio's context-enhancer defaults (LemmaContextAwareEnhancer).
_CONTEXT_FACTOR: Final = 0.35
_MIN_SCORE_WITH_CONTEXT: Final = 0.4
_CONTEXT_PREFIX_WORDS: Final = 5
# Results below this are dropped; equals the context floor so that very weak patterns count
# exactly when a context word supports them.
MIN_SCORE: Final = 0.4


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """A detected PII entity: ``text[start:end]`` is of ``type`` (one of ``PII_TYPES``)."""

    type: str
    start: int
    end: int


# --------------------------------------------------------------------------------------------
# Pattern building blocks.  Written in the common subset of ``re`` and ``regex`` syntax (except
# where ``\K`` is needed) so the same string works inside presidio (which uses ``regex``) and in
# our fast path.  Latin-1 letter ranges stand in for \p{Lu}/\p{Ll}, which ``re`` lacks.
# --------------------------------------------------------------------------------------------
_UP: Final = "A-ZÀ-ÖØ-Þ"
_LO: Final = "a-zß-öø-ÿ"
_CAP: Final = f"[{_UP}][{_LO}]+"
_NAME_SUFFIXES: Final = r"Jr\.|Sr\.|II|III|IV|MD|DDS|PhD|DVM"
# A surname is never a name suffix ("John Smith Jr." is Smith, then the suffix).
_SURNAME: Final = rf"(?!(?:Jr|Sr|II|III|IV|MD|DDS|PhD|DVM)\b)(?:Mc|Mac|O'|D')?[{_UP}][{_LO}]+(?:-[{_UP}][{_LO}]+)?"
_INITIAL: Final = rf"[{_UP}]\.?"
_NAME_SUFFIX: Final = rf"(?:[ \t](?:{_NAME_SUFFIXES})(?![\w.]))?"
_HONORIFICS: Final = ("Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof")
_PERSON_CUES: Final = (
    "customer",
    "client",
    "employee",
    "patient",
    "user",
    "member",
    "contact",
    "agent",
    "manager",
    "applicant",
    "tenant",
    "caller",
    "spoke with",
    "talked to",
    "from",
    "dear",
    "hi",
    "hello",
    "thanks",
    "regards",
    "attn",
    "cc",
)
_PERSON_LABELS: Final = (
    "name",
    "full name",
    "customer name",
    "contact name",
    "employee name",
    "patient name",
    "account holder",
    "cardholder",
    "customer",
    "employee",
    "patient",
    "contact",
    "signed by",
)
_NAME_LOCALES: Final = ("en_US", "en_GB", "en_IE", "en_IN", "es_MX")
_SINGLE_NAME: Final = re.compile(f"[{_UP}][{_LO}]+")

_CORE_STREET_SUFFIXES: Final = (
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Boulevard",
    "Blvd",
    "Lane",
    "Ln",
    "Drive",
    "Dr",
    "Way",
    "Court",
    "Ct",
    "Place",
    "Pl",
    "Terrace",
    "Ter",
    "Circle",
    "Cir",
    "Parkway",
    "Pkwy",
    "Highway",
    "Hwy",
    "Square",
    "Sq",
    "Trail",
    "Trl",
    "Alley",
    "Plaza",
    "Loop",
    "Crescent",
    "Pike",
    "Expressway",
    "Expy",
    "Freeway",
    "Fwy",
    "Turnpike",
    "Tpke",
)
_DIRECTION: Final = r"(?:[NSEW]\.?|North|South|East|West|N[EW]|S[EW])"
_STREET_WORD: Final = rf"(?:[{_UP}][{_LO}{_UP}']*|\d{{1,4}}(?:st|nd|rd|th))"
_UNIT: Final = (
    r"(?:,?[ \t]+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Fl\.?|Floor|Rm\.?|Room|Bldg\.?|\#)"
    r"[ \t]*\#?[ \t]*[A-Za-z0-9-]{1,6}\b)?"
)
_CITY: Final = rf"[{_UP}][{_LO}]+(?:[ \t][{_UP}][{_LO}]+){{0,2}}"
_ZIP: Final = r"\d{5}(?:-\d{4})?\b"


def _alternation(words: Collection[str]) -> str:
    # Longest first so that "Street" is preferred over "St".
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


_Trie = dict[str, "_Trie"]


def _trie_regex(words: Collection[str]) -> str:
    """A regex matching exactly ``words``, shaped as a prefix trie.

    A flat alternation of ~2,000 names is tried branch by branch at every capital letter
    (measured 0.7-2.9 ms per document); the trie shares prefixes and fails after a character or
    two (~20 us).
    """
    root: _Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # end of a word

    def emit(node: _Trie) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a word ends here; longer words are tried first (greedy ?)
            return f"(?:{body})?" if len(branches) == 1 else body + "?"
        return body

    return "(?:" + emit(root) + ")"


@functools.cache
def _name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """First and last names from Faker's person providers (single capitalised words)."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in _NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        first.update(n for n in provider.first_names if _SINGLE_NAME.fullmatch(n))
        last.update(n for n in provider.last_names if _SINGLE_NAME.fullmatch(n))
    return frozenset(first), frozenset(last)


@functools.cache
def _address_lists() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """USPS street suffixes and state codes, from Faker's en_US address provider."""
    provider = importlib.import_module("faker.providers.address.en_US").Provider
    states = (*provider.states_abbr, "PR", "GU", "VI", "AS", "MP")
    return tuple(provider.street_suffixes), states


# --------------------------------------------------------------------------------------------
# Recognizers (built lazily: they subclass presidio classes).
# --------------------------------------------------------------------------------------------
@functools.cache
def _recognizer_classes() -> dict[str, Callable[[], PatternRecognizer]]:
    import phonenumbers
    import regex
    import tldextract
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import EmailRecognizer, UsSsnRecognizer
    from presidio_analyzer.predefined_recognizers.generic.phone_recognizer import (
        PhoneRecognizer as PresidioPhoneRecognizer,
    )

    # Never touch the network: presidio's default ``tldextract.extract`` downloads the suffix
    # list on first use.  cache_dir=None also keeps it from writing under $HOME.
    offline_tld = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's EmailRecognizer, validating against tldextract's bundled snapshot."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld(pattern_text).fqdn != ""

    sample_ssns = frozenset({"123456789", "987654320", "078051120"})

    class RedactingSsnRecognizer(UsSsnRecognizer):
        """presidio's UsSsnRecognizer, but published sample SSNs are still reported."""

        def invalidate_result(self, pattern_text: str) -> bool:
            digits = "".join(c for c in pattern_text if c.isdigit())
            if digits in sample_ssns and len({c for c in pattern_text if c in ".- "}) <= 1:
                return False
            return bool(super().invalidate_result(pattern_text))

    ext = r"(?:[ \t]*(?:x|ext\.?|extension)[ \t]*\d{1,5})?"
    # NANP: an optional "+1"/"1" prefix, a 3-digit area code starting 2-9 (in parentheses or
    # followed by a separator), then ddd[ .-]dddd and an optional extension; the character
    # before the match must not be a word character or "+".  Written as one branch per possible
    # first character, with that look-behind placed after the first character, so that the
    # engine can skip ahead to candidate characters: ~13 us per 600 chars with the stdlib re
    # (see _STDLIB_RE) against ~26 us for the plain form, same matches.  "00"/"001" prefixes are
    # deliberately absent: phonenumbers does not read "00" as an international prefix for US
    # numbers and would reject the whole match, whereas without it the number after "001-" is
    # still found.
    area = r"(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])"  # NANP area codes start with 2-9
    nanp = (
        rf"(?:\+(?<![\w+].)1[ .-]?{area}|1(?<![\w+].)[ .-]?{area}|\((?<![\w+].)[2-9]\d{{2}}\)[ .-]?"
        rf"|[2-9](?<![\w+].)\d{{2}}[ .-])\d{{3}}[ .-]\d{{4}}{ext}(?![\w-])"
    )
    nanp_shape = regex.compile(nanp, regex.IGNORECASE)

    class PhoneRecognizer(PatternRecognizer):
        """Regex phone candidates judged by phonenumbers (see module docstring)."""

        PATTERNS: Final = (
            ("phone NANP (medium)", nanp, 0.5),
            (
                "phone international (medium)",
                r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}" + ext + r"(?![\w-])",
                0.5,
            ),
            ("phone E.164 (medium)", r"(?<![\w+])\+[1-9]\d{6,14}(?![\w-])", 0.5),
            ("phone bare 10 digits (very weak)", r"(?<![\w+.-])[2-9]\d{9}(?![\w.-])", 0.1),
        )

        def __init__(self) -> None:
            super().__init__(
                supported_entity="PHONE_NUMBER",
                name="AquiferPhoneRecognizer",
                patterns=[Pattern(n, r, s) for n, r, s in self.PATTERNS],
                context=[*PresidioPhoneRecognizer.CONTEXT, "tel"],
            )

        def invalidate_result(self, pattern_text: str) -> bool:
            if nanp_shape.fullmatch(pattern_text):
                # Ten national digits with an optional +1: exactly what is_possible_number checks
                # for NANP, so skip its ~25 us parse (a test keeps this in step with phonenumbers).
                return False
            try:
                number = phonenumbers.parse(pattern_text, "US")
            except phonenumbers.NumberParseException:
                return True
            return not phonenumbers.is_possible_number(number)

    first_names, last_names = _name_lists()
    first_trie, last_trie = _trie_regex(first_names), _trie_regex(last_names)
    # Optional middle initial ("Jane Q. Miller") or listed middle name ("Mary Ann Smith").
    middle = rf"(?:[ \t]{_INITIAL}|[ \t]{first_trie})?"
    cues = _alternation(_PERSON_CUES).replace(r"\ ", r"[ \t]+")
    labels = _alternation(_PERSON_LABELS).replace(r"\ ", r"[ \t]+")
    honorifics = _alternation(_HONORIFICS)

    class PersonRecognizer(PatternRecognizer):
        """Names from honorifics, Faker name lists, cue words and labels (see module docstring)."""

        PATTERNS: Final = (
            (
                "person honorific",
                # Up to two given names (each may be followed by an initial), then the surname.
                rf"\b(?:{honorifics})\.?[ \t]+\K(?:{_CAP}[ \t]+(?:{_INITIAL}[ \t]+)?){{0,2}}{_SURNAME}\b"
                + _NAME_SUFFIX,
                0.7,
            ),
            (
                "person listed first + last name",
                rf"\b{first_trie}{middle}[ \t]{last_trie}(?:-[{_UP}][{_LO}]+)?\b" + _NAME_SUFFIX,
                0.6,
            ),
            (
                "person cue + listed first name",
                rf"(?i:\b(?:{cues}))(?:[ \t]*[:,][ \t]*|[ \t]+)\K{first_trie}{middle}"
                rf"[ \t]{_SURNAME}\b" + _NAME_SUFFIX,
                0.6,
            ),
            (
                "person labelled",
                # Starts at the ":" (a cheap first character to scan for) and looks back for the label.
                rf"[:=](?<=(?<![A-Za-z][ \t])(?i:\b(?:{labels}))[ \t]*[:=])[ \t]*[\"']?\K{_CAP}"
                rf"(?:[ \t]{_CAP}|[ \t]{_INITIAL})?[ \t]{_SURNAME}\b" + _NAME_SUFFIX,
                0.6,
            ),
        )

        def __init__(self) -> None:
            super().__init__(
                supported_entity="PERSON",
                name="AquiferPersonRecognizer",
                patterns=[Pattern(n, r, s) for n, r, s in self.PATTERNS],
                # Case matters: names are recognised by their capitals.
                global_regex_flags=regex.DOTALL | regex.MULTILINE,
            )

    usps_suffixes, states = _address_lists()
    core = _alternation(_CORE_STREET_SUFFIXES)
    usps = _alternation(usps_suffixes + _CORE_STREET_SUFFIXES)
    state = _alternation(states)
    street_head = rf"\b\d{{1,6}}[A-Z]?(?:[ \t]+{_DIRECTION})?(?:[ \t]+{_STREET_WORD}){{1,4}}[ \t]+"
    street_tail = rf"\b\.?(?:[ \t]+(?:[NS][EW]|[NSEW])\b)?{_UNIT}"
    locality = rf"(?:,[ \t]*|[ \t]*\n[ \t]*|[ \t]+){_CITY},[ \t]*(?:{state})\b"

    class StreetAddressRecognizer(PatternRecognizer):
        """US street, military and PO-box addresses (see module docstring)."""

        PATTERNS: Final = (
            (
                "address street + common suffix",
                rf"{street_head}(?:{core}){street_tail}(?:{locality}(?:[ \t]+{_ZIP})?)?",
                0.65,
            ),
            (
                "address street + USPS suffix + city, state, ZIP",
                rf"{street_head}(?:{usps}){street_tail}{locality}[ \t]+{_ZIP}",
                0.65,
            ),
            (
                "address military",
                rf"\b(?:(?:PSC|Unit)[ \t]\d{{4}},?[ \t]Box[ \t]\d{{4}}\s+[AD]PO"
                rf"|(?:USS|USNS|USNV|USCGC)[ \t]{_CAP}\s+FPO)[ \t]A[AEP][ \t]\d{{5}}\b",
                0.65,
            ),
            (
                "address PO box",
                rf"\bP\.?[ \t]?O\.?[ \t]Box[ \t]\d{{1,6}}\b(?:{locality}(?:[ \t]+{_ZIP})?)?",
                0.5,
            ),
        )

        def __init__(self) -> None:
            super().__init__(
                supported_entity="STREET_ADDRESS",
                name="AquiferStreetAddressRecognizer",
                patterns=[Pattern(n, r, s) for n, r, s in self.PATTERNS],
                context=["address", "lives", "live", "located", "ship", "mail", "street"],
                global_regex_flags=regex.DOTALL | regex.MULTILINE,
            )

    return {
        "email": OfflineEmailRecognizer,
        "national_id": RedactingSsnRecognizer,
        "phone": PhoneRecognizer,
        "person": PersonRecognizer,
        "address": StreetAddressRecognizer,
    }


def _build_recognizers() -> list[PatternRecognizer]:
    """One recognizer per PII type, in ``PII_TYPES`` order."""
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
    )

    classes = _recognizer_classes()
    # presidio's card pattern predates Mastercard's 2221-2720 range (issued since 2017); add it,
    # four groups of four, validated by the same Luhn check.
    mastercard_2 = Pattern(
        "Mastercard 2-series (weak)",
        r"\b(?:22(?:2[1-9]|[3-9]\d)|2[3-6]\d{2}|27(?:[01]\d|20))[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b",
        0.3,
    )
    return [
        classes["person"](),
        classes["email"](),
        classes["phone"](),
        classes["national_id"](),
        classes["address"](),
        CreditCardRecognizer(patterns=[*CreditCardRecognizer.PATTERNS, mastercard_2]),
        IbanRecognizer(),
        IpRecognizer(),
    ]


def build_analyzer_engine() -> AnalyzerEngine:
    """A presidio ``AnalyzerEngine`` with exactly our recognizers and no NLP model.

    For presidio-anonymizer interop and debugging.  It is ~50x slower than :func:`detect`, applies
    no context words (``NoOpNlpEngine`` yields no tokens) and returns overlapping results; map
    entity names with ``PRESIDIO_ENTITY_TO_PII_TYPE``.
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in _build_recognizers():
        registry.add_recognizer(recognizer)
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


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


def _engine() -> tuple[_FastRecognizer, ...]:
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
    return _detect_batch([text], _engine())[0]


def detect_many(texts: Sequence[str]) -> list[list[PiiSpan]]:
    """``[detect(t) for t in texts]``, for batches.

    Repeated texts (templates, empty strings, boilerplate) are analysed once, and distinct texts
    in batches of ``_BATCH``, one pattern at a time over the batch.
    """
    engine = _engine()
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


def redact(text: str, spans: Sequence[PiiSpan], types: Collection[str] | None = None) -> str:
    """Replace ``spans`` (those of ``types`` if given) with ``[TYPE]`` placeholders.

    Text outside the spans is unchanged.  Overlapping spans (not produced by :func:`detect`) are
    redacted as their union under the first span's placeholder, so nothing leaks.
    """
    if types is not None:
        unknown = set(types) - set(PII_TYPES)
        if unknown:
            # A typo here would silently leave PII in place.
            raise ValueError(f"unknown PII types {sorted(unknown)}; expected some of {PII_TYPES}")
    selected = sorted((s for s in spans if types is None or s.type in types), key=lambda s: (s.start, -s.end))
    parts: list[str] = []
    cursor = 0
    for span in selected:
        if span.type not in _PLACEHOLDERS:
            raise ValueError(f"unknown PII type {span.type!r}")
        if not 0 <= span.start <= span.end <= len(text):
            raise ValueError(f"span {span} out of range for text of length {len(text)}")
        if span.end <= cursor:
            continue  # inside a span already redacted
        if span.start < cursor:
            cursor = span.end  # overlaps the previous placeholder: extend it
            continue
        parts.append(text[cursor : span.start])
        parts.append(_PLACEHOLDERS[span.type])
        cursor = span.end
    parts.append(text[cursor:])
    return "".join(parts)
