"""Shared, framework-light code: settings, database, models, storage and clients."""
