"""Temporal workflows. Deterministic: they import only the standard library, temporalio and
the plain contracts in ``workflows.contracts``."""
