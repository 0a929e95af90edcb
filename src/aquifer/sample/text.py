"""Values and text: the seeded clock and Faker pools, template values, and documents built from the banks."""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import re
import struct
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faker import Faker

from aquifer.sample.banks import (
    _AREA_CODES,
    _CITIES,
    _MAIL_DOMAINS,
    _MONTHS,
    _PLANS,
    _REGIONS,
    _STREET_TYPES,
    _STREETS,
    MarkdownBank,
    Section,
    Topic,
)
from aquifer.sample.spec import _DAY, MIN_WORDS

# --------------------------------------------------------------------------------------------------
# Helpers: time, pools, text.
# --------------------------------------------------------------------------------------------------


class Clock:
    """Timestamps relative to as_of midnight UTC; every timestamp lies strictly before as_of."""

    def __init__(self, as_of: dt.date) -> None:
        self.midnight = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)
        self._epoch = int(self.midnight.timestamp())
        self._day_prefix: dict[int, str] = {}

    def ago(self, seconds: int) -> dt.datetime:
        return self.midnight - dt.timedelta(seconds=seconds)

    def ts(self, seconds: int) -> str:
        """Same text as strftime(TS_FORMAT), without a datetime per call (a million records need it cheap)."""
        day, second_of_day = divmod(self._epoch - seconds, _DAY)
        prefix = self._day_prefix.get(day)
        if prefix is None:
            prefix = self._day_prefix[day] = dt.datetime.fromtimestamp(day * _DAY, dt.UTC).strftime("%Y-%m-%dT")
        hours, rest = divmod(second_of_day, 3600)
        return f"{prefix}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"

    @staticmethod
    def fresh_seconds(rng: random.Random, sla_days: int) -> int:
        # A few days of margin inside the SLA, so a pipeline run a day or two after as_of still sees them fresh.
        return rng.randrange(_DAY, (sla_days - 5) * _DAY)

    @staticmethod
    def newest_seconds(rng: random.Random) -> int:
        return rng.randrange(3600, _DAY)

    @staticmethod
    def stale_seconds(rng: random.Random, sla_days: int) -> int:
        return (sla_days + rng.randint(60, 1500)) * _DAY + rng.randrange(_DAY)


@dataclass(frozen=True)
class Pools:
    """Faker output drawn once per seed; records sample from these lists with the source's own RNG."""

    names: tuple[str, ...]
    ssns: tuple[str, ...]
    companies: tuple[tuple[str, str], ...]  # (name, email domain)
    cards: tuple[str, ...]
    partners: tuple[str, ...]


@functools.cache
def build_pools(seed: int, size: int = 3000) -> Pools:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    names = tuple(f"{fake.first_name()} {fake.last_name()}" for _ in range(size))
    ssns = tuple(fake.ssn() for _ in range(size))
    companies = tuple(_company(fake.company()) for _ in range(size // 6))
    # visa16/discover only: presidio's credit-card pattern does not cover the newer 2-series Mastercard range.
    cards = tuple(fake.credit_card_number(card_type=("visa16", "discover")[i % 2]) for i in range(200))
    partners = tuple(f"{fake.first_name()} {fake.last_name()}" for _ in range(12))
    return Pools(names, ssns, companies, cards, partners)


def _company(name: str) -> tuple[str, str]:
    slug = re.sub(r"[^a-z]", "", name.split()[0].lower().rstrip(","))
    return name, f"{slug or 'acme'}-data.com"


def _email(rng: random.Random, name: str, domain: str | None) -> str:
    first, _, last = name.lower().partition(" ")
    first, last = re.sub(r"[^a-z]", "", first), re.sub(r"[^a-z]", "", last)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}{rng.randint(1, 99)}"))
    return f"{local}@{domain or rng.choice(_MAIL_DOMAINS)}"


def _phone(rng: random.Random) -> str:
    # 555-01xx numbers are reserved for fiction, yet phonenumbers (and so presidio) treats them as valid.
    area, line = rng.choice(_AREA_CODES), f"01{rng.randint(0, 99):02d}"
    fmt = rng.choice(("({a}) 555-{l}", "{a}-555-{l}", "+1 {a} 555 {l}", "{a}.555.{l}"))
    return fmt.format(a=area, l=line)


def _address(rng: random.Random) -> str:
    city, state, zip3 = rng.choice(_CITIES)
    street = f"{rng.randint(10, 9899)} {rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}"
    return f"{street}, {city}, {state} {zip3}{rng.randint(1, 99):02d}"


def _card(rng: random.Random, pools: Pools) -> str:
    digits = rng.choice(pools.cards)
    if rng.random() < 0.5:
        return " ".join(digits[i : i + 4] for i in range(0, 16, 4))
    return digits


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


_VALUE_DRAWS: dict[str, Callable[[random.Random], Any]] = {
    "plan": lambda r: r.choice(_PLANS),
    "region": lambda r: r.choice(_REGIONS),
    "ver": lambda r: f"{r.randint(3, 5)}.{r.randint(0, 14)}",
    "n_min": lambda r: r.randint(3, 45),
    "n_days": lambda r: r.randint(3, 60),
    "days": lambda r: r.choice((30, 60, 90, 180, 365, 400, 730)),
    "k": lambda r: r.choice((50, 100, 250, 500, 1000, 2000, 5000, 10000)),
    "pct": lambda r: r.randint(5, 95),
    "hours": lambda r: r.choice((1, 2, 4, 8, 12, 24, 48)),
    "rate": lambda r: r.choice((60, 120, 300, 600, 1200)),
    "team": lambda r: r.choice(("Platform Engineering", "SRE", "Data Infrastructure", "Billing Engineering")),
    "sev": lambda r: r.randint(1, 3),
    "month": lambda r: r.choice(_MONTHS),
    "month1": lambda r: r.choice(_MONTHS[:6]),
    "month2": lambda r: r.choice(_MONTHS[6:]),
    "hh": lambda r: f"{r.randint(0, 23):02d}",
    "mm": lambda r: f"{r.randint(0, 59):02d}",
    "pto": lambda r: r.randint(15, 25),
    "carry": lambda r: r.randint(3, 10),
    "weeks": lambda r: r.choice((12, 14, 16, 18, 20)),
    "weeks2": lambda r: r.choice((6, 8, 10, 12)),
    "sick": lambda r: r.randint(5, 12),
    "match": lambda r: r.randint(3, 6),
    "meal": lambda r: r.choice((50, 75, 100, 125)),
    "flight": lambda r: r.choice((4, 5, 6, 8)),
    "stipend": lambda r: r.choice((300, 500, 750, 1000, 1500)),
    "years": lambda r: r.randint(2, 7),
    "relo": lambda r: r.choice((5000, 7500, 10000, 15000)),
    "ref": lambda r: r.randint(10000, 99999),
}


class TemplateValues(dict[str, Any]):
    """Per-document template values, drawn on first use and then fixed for the whole document.

    The random numbers are what keep thousands of pages on one topic distinct; drawing only the ones a
    page's templates mention keeps the million-record corpus fast.
    """

    def __init__(self, rng: random.Random, name: str) -> None:
        super().__init__(name=name, Name=_cap(name))
        self.rng = rng

    def __missing__(self, key: str) -> Any:
        value = self[key] = _VALUE_DRAWS[key](self.rng)
        return value


# --------------------------------------------------------------------------------------------------
# Markdown documents.
# --------------------------------------------------------------------------------------------------


@dataclass
class Doc:
    doc_id: str
    title: str
    body: str
    updated_at: str
    owner: str | None = None
    language: str | None = "en"
    acl: str | None = None  # the YAML text after `acl:` (a JSON object for the ACLs the corpus means)

    def render(self) -> bytes:
        # Title and timestamp are double-quoted (JSON escaping is valid YAML) so safe_load returns strings.
        lines = ["---", f"id: {self.doc_id}", f"title: {json.dumps(self.title, ensure_ascii=False)}"]
        lines.append(f'updated_at: "{self.updated_at}"')
        if self.owner:
            lines.append(f"owner: {self.owner}")
        if self.language:
            lines.append(f"language: {self.language}")
        if self.acl is not None:
            lines.append(f"acl: {self.acl}")
        lines += ["---", "", self.body]
        return ("\n".join(lines) + "\n").encode()


class _Deck:
    """Draws items without repeats within one document, falling back to generic filler when exhausted."""

    def __init__(self, rng: random.Random, topic: Topic, pools: dict[str, tuple[str, ...]]) -> None:
        self.rng = rng
        self.pools = pools
        self.decks: dict[str, list[str]] = {}
        self.topic = topic

    def items(self, source: str) -> tuple[str, ...]:
        if source in ("facts", "steps", "extra"):
            items: tuple[str, ...] = getattr(self.topic, source)
            return items
        return self.pools.get(source, ())

    def draw(self, source: str, n: int) -> list[str]:
        deck = self.decks.get(source)
        if deck is None:
            deck = list(self.items(source))
            self.rng.shuffle(deck)
            self.decks[source] = deck
        out = [deck.pop() for _ in range(min(n, len(deck)))]
        if source != "generic" and len(out) < n:
            out += self.draw("generic", n - len(out))
        return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isalpha() and not text[1:2].isupper() else text


def _section(sec: Section, deck: _Deck, vals: TemplateValues, rng: random.Random) -> list[str]:
    n = rng.randint(*sec.span)
    blocks = [f"## {sec.heading}"] if sec.heading else []
    if sec.layout == "code":
        return [deck.topic.code] if deck.topic.code else []
    if sec.layout == "para":
        sentences = deck.draw(sec.source, n)
        if rng.random() < 0.6:
            sentences += deck.draw("generic", 1)
        blocks.append(" ".join(sentences).format_map(vals))
    elif sec.layout == "bullets":
        blocks.append("\n".join(f"- {item}" for item in deck.draw(sec.source, n)).format_map(vals))
    elif sec.layout == "numbered":
        steps = deck.items(sec.source)[:n]  # steps are sequential, so keep their order
        blocks.append("\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)).format_map(vals))
    elif sec.layout == "qa":
        for question in deck.draw(sec.source, n):
            text, _, answer_pool = question.partition("|")
            answer = " ".join(deck.draw(answer_pool, rng.randint(1, 2)))
            blocks.append(f"**{text}**\n\n{answer}".format_map(vals))
    elif sec.layout == "symptom":
        for heading in deck.draw(sec.source, n):
            fix = _lower_first(deck.draw("steps", 1)[0])
            blocks.append(f"## {heading}\n\n{deck.draw('facts', 1)[0]} To fix it, {fix}".format_map(vals))
    return blocks


def build_doc_text(rng: random.Random, bank: MarkdownBank, topic: Topic, kind_name: str) -> tuple[str, str]:
    """Return (title, markdown body) for one page of the given topic and kind."""
    kind = bank.kinds[kind_name]
    vals = TemplateValues(rng, topic.name)
    title = _cap(rng.choice(kind.titles).format_map(vals))
    deck = _Deck(rng, topic, bank.pools)
    blocks = [f"# {title}"]
    for sec in kind.sections:
        blocks += _section(sec, deck, vals, rng)
    # Short kinds (FAQs, checklists) get extra prose so every page has at least MIN_WORDS words.
    while sum(len(b.split()) for b in blocks) < MIN_WORDS:
        extra = deck.draw("facts", 2)
        if not extra:
            break
        blocks.append(" ".join(extra).format_map(vals))
    blocks.append(bank.footer.format_map(vals))
    return title, "\n\n".join(blocks)


_CURLY = str.maketrans({'"': "\u201c", "'": "\u2019"})


def cosmetic_variant(rng: random.Random, title: str, body: str) -> tuple[str, str]:
    """Change only case, whitespace and punctuation, so detector normalisation maps both to the same text.

    Never inserts or removes a separator between two alphanumerics, or normalisations that delete
    punctuation (instead of turning it into a space) would split or merge words.
    """
    new_title = rng.choice((title.upper(), title.title(), title.lower())) + rng.choice(("!", ".", " !"))
    paragraphs = body.split("\n\n")
    paragraphs[0] = f"# {new_title}"
    out, in_code = [], False
    for para in paragraphs[1:]:
        fenced = in_code or para.startswith("```")
        in_code ^= para.count("```") % 2 == 1  # code blocks may contain blank lines
        if fenced or para.startswith(("#", "-", "<!--", ">")) or para[:1].isdigit():
            out.append(para if fenced else para.translate(_CURLY))
            continue
        para = para.replace(". ", ".  ").translate(_CURLY)
        if para.endswith("."):
            para = para[:-1] + "!"
        out.append(textwrap.fill(para, width=rng.randint(50, 72), break_on_hyphens=False, break_long_words=False))
    return new_title, "\n\n".join([paragraphs[0], *out])


def normalize_text(text: str) -> str:
    """The near-duplicate normalisation the detector uses: casefold, drop non-alphanumerics, collapse spaces."""
    return " ".join(re.sub(r"[^\w\s]|_", "", text.casefold()).split())


def _inject(body: str, block: str) -> str:
    """Insert a block a few paragraphs into the page, before any code block, where a reader skims past it."""
    parts = body.split("\n\n")
    at = min(3, len(parts))
    return "\n\n".join([*parts[:at], block, *parts[at:]])


def _png_bytes() -> bytes:
    """A small valid PNG (a diagram exported with the wrong extension): binary, full of NUL bytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    size = 16
    rows = (b"\x00" + b"".join(bytes((x * 16, y * 16, 128)) for x in range(size)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"".join(rows), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
