"""The recognizers: presidio pattern recognizers (and ours, written as presidio recognizers) with their
regexes, name and street lists, validation and context words. docs/pii.md says what each finds and misses."""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # imported lazily at runtime: presidio's import costs seconds (spaCy, torch)
    from presidio_analyzer import AnalyzerEngine, PatternRecognizer

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
