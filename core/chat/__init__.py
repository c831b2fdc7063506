"""Chat over the documents: sessions and messages, retrieval, answers, real-time fan-out.

Module rules: ``models``/``store`` are persistence only; ``retrieval`` and ``prompt`` know
nothing of sessions; ``answers`` ties them to the chat models; ``broadcast`` and
``connections`` move JSON between processes and sockets and know nothing of chat itself.
"""
