"""What PII Aquifer knows: the types, a detected span, the detector's version (recorded in lineage), the
scores, and redaction. Light on purpose: the catalog imports it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # imported lazily at runtime: presidio's import costs seconds (spaCy, torch)
    pass

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
