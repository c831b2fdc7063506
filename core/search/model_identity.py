"""Which embedding model made an index: recorded in the collection, checked on every open.

Vectors of two models live in unrelated spaces: a query embedded by one model compared with
chunks embedded by another returns noise without any error. The collection therefore records
the model's name and dimension, and a process configured with another model refuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConflictError

BUNDLED_MODEL = "all-MiniLM-L6-v2"
BUNDLED_DIM = 384


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    dim: int

    @classmethod
    def bundled(cls) -> ModelIdentity:
        return cls(BUNDLED_MODEL, BUNDLED_DIM)

    @classmethod
    def of(cls, model_path: Path | None) -> ModelIdentity:
        """The model in ``model_path`` (a sentence-transformers or transformers directory;
        None: the bundled MiniLM), read from its config without loading its weights. The name
        is the directory's: the same model copied to two machines has two paths, one name."""
        if model_path is None:
            return cls.bundled()
        config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
        return cls(name=model_path.resolve().name, dim=int(config["hidden_size"]))

    def metadata(self) -> dict[str, str | int]:
        return {"embedding_model": self.name, "embedding_dim": self.dim}

    @classmethod
    def from_metadata(cls, metadata: dict[str, object] | None) -> ModelIdentity | None:
        if not metadata or "embedding_model" not in metadata:
            return None
        return cls(str(metadata["embedding_model"]), int(str(metadata["embedding_dim"])))


class EmbeddingModelMismatchError(ConflictError):
    """The collection was made by another embedding model than the one configured."""

    error_code = "embedding_model_mismatch"

    def __init__(self, collection: str, stored: ModelIdentity, configured: ModelIdentity):
        super().__init__(
            f"The vector collection {collection!r} holds vectors of {stored.name} "
            f"({stored.dim} dimensions), but this process embeds with {configured.name} "
            f"({configured.dim} dimensions). Point DOCCHAT_EMBEDDING_MODEL_PATH back at "
            f"{stored.name}, or re-index into the new model (POST /index/reindex or "
            "`docchat reindex`, docs/search.md#index-versions).",
            details={
                "collection": collection,
                "stored_model": stored.name,
                "stored_dim": stored.dim,
                "configured_model": configured.name,
                "configured_dim": configured.dim,
            },
        )
