"""Ingestion of documents: the service the API calls, its records and tables, uploads,
extraction, chunking, faults, the child-process offload, the progress cache, task history."""
