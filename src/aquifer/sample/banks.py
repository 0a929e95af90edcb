"""The content banks: the prose, pools and page kinds the generator draws from, as data files
(``banks/*.json``) loaded into the types below. Markdown sources must stay free of PII (no names, emails, phone
numbers), because the catalog says they expect none: any hit there is a false positive the pipeline has to explain."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple


class Topic(NamedTuple):
    name: str  # used mid-sentence, e.g. "the Snowflake connector"
    facts: tuple[str, ...]
    steps: tuple[str, ...]
    extra: tuple[str, ...] = ()
    code: str = ""


class Section(NamedTuple):
    heading: str | None
    layout: str  # "para" | "bullets" | "numbered" | "code" | "qa" | "symptom"
    source: str  # "facts" | "steps" | "extra" | a pool name
    span: tuple[int, int]  # how many items to draw, inclusive range


class Kind(NamedTuple):
    titles: tuple[str, ...]
    sections: tuple[Section, ...]


def _s(heading: str | None, layout: str, source: str, lo: int = 1, hi: int | None = None) -> Section:
    return Section(heading, layout, source, (lo, lo if hi is None else hi))


@dataclass(frozen=True)
class MarkdownBank:
    """Topics, page kinds and filler pools for one markdown source."""

    combos: tuple[tuple[Topic, str], ...]
    kinds: dict[str, Kind]
    pools: dict[str, tuple[str, ...]]
    # A reference number on every page: real sources have them, and they keep pages of small topics distinct.
    footer: str
    owners: tuple[str, ...] = ()


class TicketProblem(NamedTuple):
    subjects: tuple[str, ...]
    sentences: tuple[str, ...]


def _load(name: str) -> dict[str, Any]:
    """One bank file (``banks/<name>.json``), its arrays as tuples and its tagged objects as their types."""
    types = {"Topic": Topic, "Section": Section, "Kind": Kind, "TicketProblem": TicketProblem}

    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(decode(v) for v in value)
        if isinstance(value, dict):
            kind = value.get("_type")
            decoded = {k: decode(v) for k, v in value.items() if k != "_type"}
            return types[kind](**decoded) if kind else decoded
        return value

    text = resources.files("aquifer.sample").joinpath("banks", f"{name}.json").read_text(encoding="utf-8")
    return {k: decode(v) for k, v in json.loads(text).items()}


_PRODUCT_DOCS = _load("product_docs")
_PD_TOPICS: tuple[Topic, ...] = _PRODUCT_DOCS["pd_topics"]
_PD_POOLS: dict[str, tuple[str, ...]] = _PRODUCT_DOCS["pd_pools"]
_PD_KINDS: dict[str, Kind] = _PRODUCT_DOCS["pd_kinds"]

_ENGINEERING_WIKI = _load("engineering_wiki")
_WIKI_COMPONENTS: tuple[Topic, ...] = _ENGINEERING_WIKI["wiki_components"]
_WIKI_INCIDENTS: tuple[Topic, ...] = _ENGINEERING_WIKI["wiki_incidents"]
_WIKI_POOLS: dict[str, tuple[str, ...]] = _ENGINEERING_WIKI["wiki_pools"]
_WIKI_KINDS: dict[str, Kind] = _ENGINEERING_WIKI["wiki_kinds"]
_WIKI_OWNERS: tuple[str, ...] = _ENGINEERING_WIKI["wiki_owners"]

_HR_HANDBOOK = _load("hr_handbook")
_HB_TOPICS: tuple[Topic, ...] = _HR_HANDBOOK["hb_topics"]
_HB_POOLS: dict[str, tuple[str, ...]] = _HR_HANDBOOK["hb_pools"]
_HB_KINDS: dict[str, Kind] = _HR_HANDBOOK["hb_kinds"]
_HB_OWNERS: tuple[str, ...] = _HR_HANDBOOK["hb_owners"]

_SECURITY_RUNBOOKS = _load("security_runbooks")
_RB_TOPICS: tuple[Topic, ...] = _SECURITY_RUNBOOKS["rb_topics"]
_RB_POOLS: dict[str, tuple[str, ...]] = _SECURITY_RUNBOOKS["rb_pools"]
_RB_KINDS: dict[str, Kind] = _SECURITY_RUNBOOKS["rb_kinds"]

_COMMON = _load("common")
_PLANS: tuple[str, ...] = _COMMON["plans"]
_REGIONS: tuple[str, ...] = _COMMON["regions"]
_MONTHS: tuple[str, ...] = _COMMON["months"]
INSTRUCTION_PHRASES: dict[str, tuple[str, ...]] = _COMMON["instruction_phrases"]
_INJECTION_TEMPLATES: dict[str, str] = _COMMON["injection_templates"]
_CITIES: tuple[tuple[str, ...], ...] = _COMMON["cities"]
_STREETS: tuple[str, ...] = _COMMON["streets"]
_STREET_TYPES: tuple[str, ...] = _COMMON["street_types"]
_AREA_CODES: tuple[int, ...] = _COMMON["area_codes"]
_MAIL_DOMAINS: tuple[str, ...] = _COMMON["mail_domains"]

_SUPPORT_TICKETS = _load("support_tickets")
_TICKET_PROBLEMS: tuple[TicketProblem, ...] = _SUPPORT_TICKETS["ticket_problems"]
_TICKET_GREETINGS: tuple[str, ...] = _SUPPORT_TICKETS["ticket_greetings"]
_TICKET_INTROS: tuple[str, ...] = _SUPPORT_TICKETS["ticket_intros"]
_TICKET_CONTACTS: tuple[str, ...] = _SUPPORT_TICKETS["ticket_contacts"]
_TICKET_SIGNOFFS: tuple[str, ...] = _SUPPORT_TICKETS["ticket_signoffs"]
_PRIORITIES: tuple[str, ...] = _SUPPORT_TICKETS["priorities"]
_STATUSES: tuple[str, ...] = _SUPPORT_TICKETS["statuses"]

_HR_CASE_NOTES = _load("hr_case_notes")
_CASE_TYPES: dict[str, tuple[str, ...]] = _HR_CASE_NOTES["case_types"]
_CASE_OPENERS: tuple[str, ...] = _HR_CASE_NOTES["case_openers"]
_CASE_DETAILS: tuple[str, ...] = _HR_CASE_NOTES["case_details"]
_CASE_PII: dict[str, tuple[str, ...]] = _HR_CASE_NOTES["case_pii"]
_CASE_ES: tuple[str, ...] = _HR_CASE_NOTES["case_es"]
_CASE_TOPICS: dict[str, tuple[str, ...]] = _HR_CASE_NOTES["case_topics"]

_FINANCE_REPORTS = _load("finance_reports")
_FIN_KINDS: tuple[str, ...] = _FINANCE_REPORTS["fin_kinds"]
_FIN_REGIONS: tuple[str, ...] = _FINANCE_REPORTS["fin_regions"]
_FIN_SEGMENTS: tuple[str, ...] = _FINANCE_REPORTS["fin_segments"]
_FIN_SENTENCES: tuple[str, ...] = _FINANCE_REPORTS["fin_sentences"]


def _combos(topics: Sequence[Topic], kinds: Sequence[str]) -> tuple[tuple[Topic, str], ...]:
    return tuple((t, k) for t in topics for k in kinds)


_BANKS: dict[str, MarkdownBank] = {
    "product_docs": MarkdownBank(
        _combos(_PD_TOPICS, tuple(_PD_KINDS)), _PD_KINDS, _PD_POOLS, "_Article KB{ref} - Tidewater {ver}_"
    ),
    "engineering_wiki": MarkdownBank(
        _combos(_WIKI_COMPONENTS, ("architecture", "howto", "oncall")) + _combos(_WIKI_INCIDENTS, ("postmortem",)),
        _WIKI_KINDS,
        _WIKI_POOLS,
        "_Tracking ticket: PLAT-{ref}_",
        _WIKI_OWNERS,
    ),
    "hr_handbook": MarkdownBank(
        _combos(_HB_TOPICS, tuple(_HB_KINDS)), _HB_KINDS, _HB_POOLS, "_Policy reference HR-{ref}_", _HB_OWNERS
    ),
    "security_runbooks": MarkdownBank(
        _combos(_RB_TOPICS, tuple(_RB_KINDS)), _RB_KINDS, _RB_POOLS, "_Runbook reference SEC-{ref}_"
    ),
}

# Phrases a prompt-injection detector should catch; each planted document carries one verbatim.
