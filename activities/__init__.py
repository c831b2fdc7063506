"""Temporal activities: the side effects of ingestion (files, SQL, embeddings, Qdrant)."""
