"""The gateway's pure parts: how context is rendered into the prompt, what is retrieved for a conversation, where the
context goes among the messages; and the demo tokens `aquifer up` prints."""

from __future__ import annotations

import random

from aquifer.credentials import CredentialStore, development_token
from aquifer.service.conversation import FOLLOW_UP, NO_CONTEXT, governed_messages, render_context, turn_queries
from aquifer.service.schemas import ChatMessage, Chunk, Layered, Receipt
from aquifer.settings import PROJECT_ROOT
from tests.test_credentials import DEV_TOKENS


def chunk(
    n: int, *, dataset: str = "product_docs", score: float = 0.5, decision: str = "dec_1", label: str | None = None
) -> Chunk:
    layer = Layered(id=f"id{n}", delta_version=1)
    return Chunk(
        chunk_id=f"gld_{n:04d}",
        text=f"text of chunk {n}\n",
        score=score,
        dataset=dataset,
        layer="platinum",
        classification="public",
        tokens=5,
        redactions=[],
        label=label,
        receipt=Receipt(
            source_uri=f"{dataset}/doc-{n % 3}.md",
            source_sha256="0" * 64,
            bronze=layer,
            silver=layer,
            gold=layer,
            platinum=layer,
            dagster_run_id="run",
            embedding_model="m",
            index_version=1,
            policy_revision="rev",
            decision_id=decision,
        ),
    )


def test_the_same_chunks_render_to_the_same_bytes_whatever_their_order_score_or_decision() -> None:
    chunks = [chunk(n, dataset="support_tickets" if n % 2 else "product_docs") for n in range(8)]
    block, ordered = render_context(chunks)
    for seed in range(5):
        shuffled = random.Random(seed).sample(chunks, len(chunks))
        rescored = [c.model_copy(update={"score": random.Random(seed).random()}) for c in shuffled]
        redecided = [
            c.model_copy(update={"receipt": c.receipt.model_copy(update={"decision_id": f"dec_{seed}"})})
            for c in rescored
        ]
        again, order = render_context(redecided)
        assert again.encode() == block.encode()
        assert [c.chunk_id for c in order] == [c.chunk_id for c in ordered]
    assert "dec_" not in block and "0.5" not in block
    assert block.index("[1] product_docs") < block.index("[5] support_tickets"), "grouped by dataset, then file"
    assert [c.dataset for c in ordered] == ["product_docs"] * 4 + ["support_tickets"] * 4


def test_labels_are_rendered_and_no_context_says_so() -> None:
    block, _ = render_context([chunk(1, label="uncertified")])
    assert "[1] product_docs: product_docs/doc-1.md (uncertified)\ntext of chunk 1" in block
    assert render_context([]) == (NO_CONTEXT, [])


def test_each_user_turn_retrieves_for_itself_and_the_turn_before() -> None:
    messages = [
        ChatMessage(role="system", content="be brief"),
        ChatMessage(role="user", content="How do refunds work?"),
        ChatMessage(role="assistant", content="They take 10 days [1]."),
        ChatMessage(role="user", content=[{"type": "text", "text": "And for annual plans?"}, {"type": "image_url"}]),
        ChatMessage(role="assistant", content="Prorated [2]."),
        ChatMessage(role="user", content="Thanks. Who approves them?"),
    ]
    assert turn_queries(messages) == [
        (1, "How do refunds work?"),
        (3, "And for annual plans?\nHow do refunds work?"),
        (5, "Thanks. Who approves them?\nAnd for annual plans?"),
    ]
    assert turn_queries(messages[:4]) == turn_queries(messages)[:2], "a turn's query never changes later"
    assert turn_queries([ChatMessage(role="assistant", content="hi")]) == []
    assert len(turn_queries([ChatMessage(role="user", content="x" * 10_000)])[0][1]) == 4000


def test_a_later_turns_sources_follow_on_and_leave_earlier_bytes_alone() -> None:
    first, _ = render_context([chunk(1), chunk(2)])
    later, order = render_context([chunk(3)], start=3, follow_up=True)
    assert later.startswith(FOLLOW_UP) and "[3] product_docs" in later and [c.chunk_id for c in order] == ["gld_0003"]
    assert render_context([], follow_up=True) == ("", [])
    turn1 = [ChatMessage(role="user", content="q1")]
    turn2 = [*turn1, ChatMessage(role="assistant", content="a1"), ChatMessage(role="user", content="q2")]
    sent1 = governed_messages(turn1, first)
    sent2 = governed_messages(turn2, first, {2: later})
    assert sent2[: len(sent1)] == sent1, "the prompt of turn 2 starts with the prompt of turn 1"
    assert sent2[len(sent1) :] == [
        {"role": "assistant", "content": "a1"},
        {"role": "system", "content": later},
        {"role": "user", "content": "q2"},
    ]
    folded = governed_messages(turn2, first, {2: later}, follow_up="user")
    assert [m["role"] for m in folded] == ["system", "user", "assistant", "user"], "one leading system message"
    assert folded[:2] == sent1 and folded[3]["content"] == later + "\n\nq2"


def test_the_context_joins_the_agents_system_prompt_or_comes_first() -> None:
    user = ChatMessage(role="user", content="q")
    assert governed_messages([user], "CTX") == [{"role": "system", "content": "CTX"}, {"role": "user", "content": "q"}]
    merged = governed_messages([ChatMessage(role="developer", content="Be brief.  "), user], "CTX")
    assert merged == [{"role": "system", "content": "Be brief.\n\nCTX"}, {"role": "user", "content": "q"}]
    extra = governed_messages([ChatMessage(role="user", content="q", name="ann")], "CTX")  # fields pass through
    assert extra[1] == {"role": "user", "content": "q", "name": "ann"}


def test_development_tokens_are_derived_only_for_demo_entries() -> None:
    credentials = CredentialStore(PROJECT_ROOT / "catalog" / "credentials.yaml").load().values()
    derived = {c.agent: development_token(c) for c in credentials if c.development_only}
    assert derived == DEV_TOKENS
    issued = next(iter(credentials)).model_copy(update={"development_only": False})
    assert development_token(issued) is None
    tampered = next(iter(credentials)).model_copy(update={"sha256": "f" * 64})
    assert development_token(tampered) is None
