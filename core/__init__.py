"""The shared library: one package per feature (ingestion, search, chat, llm) and, at the root,
what every feature shares: settings, errors, auth, database, migrations, the Temporal client,
the resources a process holds, the text types."""
