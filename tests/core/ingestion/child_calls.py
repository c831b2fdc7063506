"""Functions the offload tests run in child processes. A module of their own, importing
nothing heavy: a spawned child imports the module of what it runs, and the test module's torch
would cost every fresh child seconds."""

from __future__ import annotations

import os
import time


def identity() -> tuple[int, int]:
    return os.getpid(), os.nice(0)


def nap_then_identity(seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return identity()


def nap_then_die(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(9)  # as if killed for memory
