"""A conversation and its governed context: what each user turn retrieves for, how the sources render (numbered
citations in a stable order), and where each turn's block goes so that the prompt of turn n starts with the prompt
of turn n-1 (a local model's prompt cache then reuses it). Pure functions: no HTTP, no policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aquifer.service.retrieval import Retrieval
from aquifer.service.schemas import ChatMessage, Chunk

QUERY_CHARS = 4000

PREAMBLE = (
    "Context: numbered sources that Aquifer retrieved and checked for this conversation. Answer from them and cite"
    " the sources you use as [n]. If they do not contain the answer, say so."
)
FOLLOW_UP = "More context, numbered on from the sources above:"
NO_CONTEXT = (
    "Context: Aquifer found no source this agent may use for this question. Say that you cannot answer it from"
    " governed sources."
)


def render_context(
    chunks: Sequence[Chunk], *, order: str = "stable", start: int = 1, follow_up: bool = False
) -> tuple[str, list[Chunk]]:
    """A context block and its chunks in citation order ``[start]..``.

    The stable order is by dataset, landing file and chunk id, never by score, and nothing request-specific
    (scores, decision ids) is rendered: the same chunks always give the same bytes, whatever the question that
    found them. ``order="relevance"`` puts the best-scoring chunk first instead (the bytes then change with the
    question, so a prompt cache cannot reuse them). ``follow_up`` renders the block of a later turn.
    """
    if order == "relevance":
        ordered = sorted(chunks, key=lambda c: (-c.score, c.chunk_id))
    else:
        ordered = sorted(chunks, key=lambda c: (c.dataset, c.receipt.source_uri, c.chunk_id))
    if not ordered:
        return ("" if follow_up else NO_CONTEXT), []
    parts = [FOLLOW_UP if follow_up else PREAMBLE]
    for n, chunk in enumerate(ordered, start):
        label = f" ({chunk.label})" if chunk.label else ""
        parts.append(f"[{n}] {chunk.dataset}: {chunk.receipt.source_uri}{label}\n{chunk.text.strip()}")
    return "\n\n".join(parts), ordered


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(str(p.get("text", "")) for p in message.content or [] if p.get("type") == "text")


def turn_queries(messages: Sequence[ChatMessage]) -> list[tuple[int, str]]:
    """(message index, what to retrieve for) per user turn: the turn's text, then the previous turn's (so a
    follow-up such as "and for annual plans?" keeps its topic). It depends only on the conversation up to that turn,
    so a turn retrieves the same sources on every later request of the conversation."""
    turns = [(i, _text(m).strip()) for i, m in enumerate(messages) if m.role == "user"]
    turns = [(i, text) for i, text in turns if text]
    return [
        (i, "\n".join([text] + ([turns[k - 1][1]] if k else []))[:QUERY_CHARS]) for k, (i, text) in enumerate(turns)
    ]


def governed_messages(
    messages: Sequence[ChatMessage], block: str, later: dict[int, str] | None = None, *, follow_up: str = "system"
) -> list[dict[str, Any]]:
    """The conversation with the context: ``block`` in the system message (after the agent's own system prompt),
    and each later turn's new sources (``later``: message index to block) in a system message just before that
    turn's user message (``follow_up="user"``: at the start of that message, for chat templates that allow only
    one, leading, system message). Earlier turns' blocks never move, so the prompt of turn n starts with the prompt
    of turn n-1 and the model's prompt cache reuses it."""
    later = later or {}
    sent: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        turn = message.model_dump(exclude_none=True)
        if i in later and follow_up == "user":
            content = turn.get("content")
            turn["content"] = (
                later[i] + "\n\n" + content
                if isinstance(content, str)
                else [{"type": "text", "text": later[i]}, *(content or [])]
            )
        elif i in later:
            sent.append({"role": "system", "content": later[i]})
        sent.append(turn)
    first = sent[0]
    if first["role"] in ("system", "developer") and isinstance(first.get("content"), str) and 0 not in later:
        sent[0] = {**first, "role": "system", "content": first["content"].rstrip() + "\n\n" + block}
    else:
        sent.insert(0, {"role": "system", "content": block})
    return sent


def conversation(
    turns: list[tuple[int, str]], parts: list[Retrieval], *, follow_up_tokens: int, conversation_tokens: int
) -> tuple[Retrieval, str, dict[int, str]]:
    """Each turn's sources, new ones only, in the order the turns came; the context starts again from a turn
    whose new sources would pass the conversation's budget. Returns the combined retrieval (its chunks in
    citation order), the first block, and the later turns' blocks by message index."""
    windows: list[list[tuple[int, list[Chunk]]]] = [[]]
    seen: set[str] = set()
    used = 0
    for (index, _), part in zip(turns, parts, strict=True):
        fresh = [c for c in part.chunks if c.chunk_id not in seen]
        if windows[-1]:  # a follow-up: its best new sources within the follow-up budget
            fresh = _within(fresh, follow_up_tokens)
        tokens = sum(c.tokens for c in fresh)
        if windows[-1] and used + tokens > conversation_tokens:
            windows.append([])
            seen, used = set(), 0
            fresh, tokens = list(part.chunks), sum(c.tokens for c in part.chunks)
        seen.update(c.chunk_id for c in fresh)
        used += tokens
        windows[-1].append((index, fresh))
    block, later, ordered = "", {}, list[Chunk]()
    for k, (index, fresh) in enumerate(windows[-1]):
        text, chunks = render_context(fresh, start=len(ordered) + 1, follow_up=k > 0)
        if k == 0:
            block = text
        elif text:
            later[index] = text
        ordered += chunks
    return Retrieval.combine(parts, ordered), block, later


def _within(chunks: Sequence[Chunk], budget: int) -> list[Chunk]:
    """The chunks, best first, that fit ``budget`` tokens together."""
    kept, used = [], 0
    for chunk in chunks:
        if used + chunk.tokens <= budget:
            kept.append(chunk)
            used += chunk.tokens
    return kept
