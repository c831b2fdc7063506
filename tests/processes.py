"""docchat's real processes for multi-process tests: API replicas (uvicorn) and workers
(``python worker.py``), each configured only through ``DOCCHAT_*`` variables, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx

from tests.helpers import free_port

REPO = Path(__file__).resolve().parent.parent


class Service:
    """One child process with its log file; ``stop`` ends it with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_handle = log.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log_handle, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.name} (pid {self.pid}) ---\n" + "\n".join(text[-lines:])

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_handle.close()
        return self.process.returncode


def service_env(**settings: object) -> dict[str, str]:
    """This environment without any ``DOCCHAT_*`` variable, plus the given settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOCCHAT_")}
    env.update({f"DOCCHAT_{name.upper()}": str(value) for name, value in settings.items()})
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def services(*started: Service) -> Iterator[tuple[Service, ...]]:
    """Stop every service at the end; a failure shows each one's log."""
    try:
        yield started
    except BaseException as exc:
        logs = "\n".join(service.log_tail() for service in started)
        exc.add_note(logs)
        raise
    finally:
        for service in started:
            service.stop()


def start_api(name: str, log_dir: Path, **settings: object) -> tuple[Service, str]:
    """An API replica on a free loopback port; returns it and its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port),
        "--ws", "websockets-sansio", "--log-level", "warning",
    ]  # fmt: skip
    service = Service(name, command, service_env(**settings), log_dir / f"{name}.log")
    return service, f"127.0.0.1:{port}"


def start_worker(name: str, log_dir: Path, **settings: object) -> Service:
    command = [sys.executable, str(REPO / "worker.py")]
    return Service(name, command, service_env(**settings), log_dir / f"{name}.log")


async def wait_until_serving(service: Service, address: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as http:
        while True:
            service.check_running()
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/health")).status_code in (200, 503):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{service.name} did not serve in {timeout:g} s")
            await asyncio.sleep(0.25)


@contextlib.asynccontextmanager
async def http_client(address: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as client:
        yield client
