"""Search, for ingestion and chat alike: embeddings, the vector store, keyword terms, the index
layout and its migration, retrieval. Nothing here imports ingestion or chat."""

from typing import Literal, get_args

# How a search ranks chunks: by meaning (dense), by their words (keyword), or both fused.
Retrieval = Literal["hybrid", "dense", "keyword"]
RETRIEVALS: tuple[Retrieval, ...] = get_args(Retrieval)
