"""The Markdown sources (product docs, engineering wiki, HR handbook, security runbooks) with their planted problems."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import replace

from aquifer.sample.acls import HOSTILE_ACLS, HOSTILE_STATUS, principals, runbook_acl
from aquifer.sample.banks import _BANKS, _INJECTION_TEMPLATES, INSTRUCTION_PHRASES, Topic
from aquifer.sample.spec import _DAY, SourceSpec
from aquifer.sample.text import Clock, Doc, _inject, _png_bytes, build_doc_text, cosmetic_variant
from aquifer.sample.writers import Run, ShardedDir

# --------------------------------------------------------------------------------------------------
# Markdown sources.
# --------------------------------------------------------------------------------------------------

# Planted per scale unit (each unit is the scale-1 corpus); malformed files are planted once per corpus.
_MD_PLANTS: dict[str, dict[str, int]] = {
    "product_docs": {"exact_duplicate": 1, "near_duplicate": 1, "instruction_like": 1, "stale": 1},
    "engineering_wiki": {"stale": 3, "near_duplicate": 1, "instruction_like": 1},
    "hr_handbook": {"superseded": 1, "stale": 1, "near_duplicate": 1},
    "security_runbooks": {"superseded": 1, "stale": 1},
}
_MD_MALFORMED = {
    "product_docs": "empty_file",
    "engineering_wiki": "invalid_utf8",
    "security_runbooks": "binary_content",
}
_LEGACY_SENTENCE = "Imported from the old wiki \u2013 some formatting may be off."


def _next_phrase(source_id: str, planted: int) -> str:
    # Rotate through the source's phrases so that every phrase is planted at scale 1.
    phrases = INSTRUCTION_PHRASES[source_id]
    return phrases[planted % len(phrases)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


class MarkdownSource:
    """Generates one markdown source: normal pages plus the planted anomalies, one scale unit at a time."""

    def __init__(self, spec: SourceSpec, run: Run, rng: random.Random, rel_root: str) -> None:
        self.spec = spec
        self.run = run
        self.rng = rng
        self.bank = _BANKS[spec.source_id]
        self.writer = ShardedDir(run.landing, rel_root)
        self.seen: set[bytes] = set()
        self.injected = 0
        # a stream of its own, so planting hostile ACLs leaves every draw of the pages themselves as it was
        self.acl_rng = run.rng(f"{spec.source_id}/acl")

    def doc_id(self, index: int) -> str:
        return f"{self.spec.id_prefix}-{index + 1:04d}"

    def unique_text(self, combo: tuple[Topic, str], title: str | None = None) -> tuple[str, str]:
        """A page text never produced before in this source, optionally under a fixed title.

        Redrawing on exact repeats keeps distinct pages from collapsing under near-duplicate normalisation,
        which would otherwise happen at large scales for topics with few facts.
        """
        while True:
            new_title, body = build_doc_text(self.rng, self.bank, *combo)
            if title is not None:
                new_title, body = title, "\n\n".join([f"# {title}", *body.split("\n\n")[1:]])
            digest = hashlib.blake2b(f"{new_title}\n{body}".encode(), digest_size=16).digest()
            if digest not in self.seen:
                self.seen.add(digest)
                return new_title, body

    def new_doc(self, index: int, seconds: int, combo: tuple[Topic, str]) -> Doc:
        title, body = self.unique_text(combo)
        owner = self.rng.choice(self.bank.owners) if self.bank.owners and self.rng.random() < 0.8 else None
        language = "en" if self.rng.random() < 0.75 else None
        acl = runbook_acl(self.spec.source_id, combo[1])
        return Doc(self.doc_id(index), title, body, self.run.clock.ts(seconds), owner, language, acl)

    def write_normal(self, first_index: int, count: int, seconds: Callable[[int], int]) -> list[str]:
        """Plain pages only (used by increments); returns their uris."""
        order = self._shuffled_combos()
        uris = []
        for i in range(count):
            doc = self.new_doc(first_index + i, seconds(first_index + i), order[i % len(order)])
            uris.append(self.writer.write(f"{doc.doc_id}.md", doc.render()))
        return uris

    def write_unit(self, unit: int) -> None:
        n = self.spec.per_unit
        order = self._shuffled_combos()
        plan = self._plan(n, _MD_MALFORMED.get(self.spec.source_id) if unit == 0 else None)
        if unit == 0:  # hostile ACLs, like malformed files, are planted once per corpus
            taken = set(plan) | {arg for _, arg in plan.values() if arg >= 0}
            free = [slot for slot in range(1, n) if slot not in taken]
            hostile = HOSTILE_ACLS.get(self.spec.source_id, {})
            slots = self.acl_rng.sample(free, len(hostile))
            plan |= {slot: (role, -1) for slot, role in zip(slots, hostile, strict=True)}
        docs, combos = [], []
        for slot in range(n):
            index = unit * n + slot
            combos.append(order[slot % len(order)])
            docs.append(self.new_doc(index, self._fresh(index), combos[-1]))
        for slot, doc in enumerate(docs):
            role, arg = plan.get(slot, ("", -1))
            self._emit(doc, role, docs[arg] if arg >= 0 else doc, combos[slot])

    def _shuffled_combos(self) -> list[tuple[Topic, str]]:
        order = list(self.bank.combos)
        self.rng.shuffle(order)
        return order

    def _fresh(self, index: int) -> int:
        if index == 0:  # every source's newest record lies within a day of as_of
            return Clock.newest_seconds(self.rng)
        return Clock.fresh_seconds(self.rng, self.spec.freshness_days)

    def _plan(self, n: int, malformed: str | None) -> dict[int, tuple[str, int]]:
        """Map slot -> (role, slot of the original for near duplicates) for one unit; slot 0 stays normal."""
        roles = [role for role, count in _MD_PLANTS[self.spec.source_id].items() for _ in range(count)]
        roles += [malformed] if malformed else []
        near = roles.count("near_duplicate")
        slots = self.rng.sample(range(1, n), len(roles) + near)
        originals = iter(slots[len(roles) :])
        return {
            slot: (role, next(originals) if role == "near_duplicate" else -1)
            for slot, role in zip(slots, roles, strict=False)
        }

    def _document(self, doc: Doc) -> None:
        acl = principals(json.loads(doc.acl)) if doc.acl is not None else None
        self.run.manifest.document(self.spec.source_id, doc.doc_id, acl)

    def _emit(self, doc: Doc, role: str, original: Doc, combo: tuple[Topic, str]) -> None:
        add, src = self.run.manifest.add, self.spec.source_id
        if role in HOSTILE_STATUS:
            doc.acl = HOSTILE_ACLS[src][role][1]
            uri = self.writer.write(f"{doc.doc_id}.md", doc.render())
            add("malformed", source_id=src, uri=uri, expected_status=HOSTILE_STATUS[role], line=None, acl_variant=role)
            return
        if role == "stale":
            doc.updated_at = self.run.clock.ts(Clock.stale_seconds(self.rng, self.spec.freshness_days))
            add("stale", source_id=src, id=doc.doc_id)
        elif role == "instruction_like":
            phrase = _next_phrase(src, self.injected)
            self.injected += 1
            doc.body = _inject(doc.body, _INJECTION_TEMPLATES[phrase])
            add("instruction_like", source_id=src, id=doc.doc_id, phrase=phrase)
        elif role == "near_duplicate":
            doc.title, doc.body = cosmetic_variant(self.rng, original.title, original.body)
            doc.acl = original.acl  # a copy of a page keeps its restrictions
            # Republished: dated after the original it copies.
            original_age = self.run.clock.midnight - dt.datetime.fromisoformat(original.updated_at)
            doc.updated_at = self.run.clock.ts(self.rng.randrange(3600, int(original_age.total_seconds())))
            add("near_duplicates", source_id=src, id=doc.doc_id, of=original.doc_id)
        elif role == "exact_duplicate":
            data = doc.render()
            uris = [self.writer.write(f"{doc.doc_id}.md", data), self.writer.write(f"{doc.doc_id}-copy.md", data)]
            add("exact_duplicates", source_id=src, id=doc.doc_id, uris=uris)
            self._document(doc)
            return
        elif role == "superseded":
            self._emit_superseded(doc, combo)
            return
        elif role:
            uri = self.writer.write(f"{doc.doc_id}.md", self._malformed_bytes(doc, role))
            add("malformed", source_id=src, uri=uri, expected_status=role, line=None)
            return
        self.writer.write(f"{doc.doc_id}.md", doc.render())
        self._document(doc)

    def _emit_superseded(self, doc: Doc, combo: tuple[Topic, str]) -> None:
        """Write an older edition (same id and title, different text) and the current one, as separate files."""
        sla = self.spec.freshness_days
        # The older edition is still inside the SLA, so it is superseded without also being stale.
        older_s = self.rng.randint(sla * 6 // 10, sla * 9 // 10) * _DAY + self.rng.randrange(_DAY)
        older = replace(doc, body=self.unique_text(combo, doc.title)[1], updated_at=self.run.clock.ts(older_s))
        doc.updated_at = self.run.clock.ts(self.rng.randint(2, 30) * _DAY + self.rng.randrange(_DAY))
        stem = f"{doc.doc_id}-{_slug(doc.title)}"
        newer_uri = self.writer.write(f"{stem}-{doc.updated_at[:7]}.md", doc.render())
        older_uri = self.writer.write(f"{stem}-{older.updated_at[:7]}.md", older.render())
        self.run.manifest.add(
            "superseded", source_id=self.spec.source_id, id=doc.doc_id, older_uri=older_uri, newer_uri=newer_uri
        )
        self._document(doc)  # both editions carry the same ACL

    @staticmethod
    def _malformed_bytes(doc: Doc, status: str) -> bytes:
        if status == "empty_file":
            return b""
        if status == "binary_content":
            return _png_bytes()
        # invalid_utf8: one sentence pasted from a Windows-1252 editor; its en dash is byte 0x96.
        doc.body = _inject(doc.body, _LEGACY_SENTENCE)
        return doc.render().replace(_LEGACY_SENTENCE.encode(), _LEGACY_SENTENCE.encode("cp1252"))


def _markdown(run: Run, spec: SourceSpec) -> None:
    source = MarkdownSource(spec, run, run.rng(spec.source_id), spec.source_id)
    for unit in range(run.scale):
        source.write_unit(unit)
    run.manifest.counts[spec.source_id] = {"files": source.writer.files, "records": source.writer.files}
