"""PII detection and redaction for the silver layer (design, recognizers, limits and speed: docs/pii.md).

Silver runs :func:`detect_many` over every record's free text; gold and platinum use the spans to classify and
:func:`redact` them. Detection is built on presidio-analyzer's recognizers, all pattern recognizers (spaCy's models
cannot be installed here), run by a fast path with presidio's own decision logic.

=====================================  =========================================================================
``PII_TYPES``                          the eight types this package emits, in a fixed order (:mod:`.types`)
``DETECTOR_VERSION``                   recorded in lineage: the rules' revision and the libraries' versions
``PiiSpan``                            ``(type, start, end)``: character offsets into the text, end exclusive
``detect(text)``, ``detect_many``      spans sorted by start, never overlapping (:mod:`._engine`)
``detect_parallel``                    ``detect_many`` over worker processes, for large batches
``redact(text, spans, types=None)``    replaces spans by ``[PERSON]``, ``[EMAIL]``, ...
``build_analyzer_engine()``            a presidio ``AnalyzerEngine`` with the same recognizers (:mod:`.recognizers`)
=====================================  =========================================================================

>>> [(s.type, s.start) for s in detect("Write to jane.doe@example.com")]
[('email', 9)]
"""

from aquifer.pii._engine import detect, detect_many, detect_parallel
from aquifer.pii.recognizers import build_analyzer_engine
from aquifer.pii.types import DETECTOR_VERSION, MIN_SCORE, PII_TYPES, PRESIDIO_ENTITY_TO_PII_TYPE, PiiSpan, redact

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
