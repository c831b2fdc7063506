"""``docchat reindex``: start, steer and follow the re-index (docs/search.md#index-versions)."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from cli.client import DEFAULT_URL, Api, ApiError

POLL_SECONDS = 0.5
ENDED = {"completed", "cancelled", "waiting_for_retry"}


class Action(StrEnum):
    START = "start"
    STATUS = "status"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"


def register(app: typer.Typer, out: Console, err: Console) -> None:
    @app.command()
    def reindex(
        action: Annotated[
            Action, typer.Argument(help="start (default), status, pause, resume, cancel, retry.")
        ] = Action.START,
        follow: Annotated[bool, typer.Option(help="Show its progress until it ends.")] = True,
        url: Annotated[str, typer.Option("--url", envvar="DOCCHAT_URL")] = DEFAULT_URL,
        api_key: Annotated[
            str | None, typer.Option("--api-key", envvar="DOCCHAT_API_KEY", show_default=False)
        ] = None,
    ) -> None:
        """Rebuild every document into the configured settings' index version, then switch
        search to it; exit 1 if it ends cancelled or with failed documents."""

        async def run() -> dict[str, Any]:
            async with Api(url, api_key) as api:
                if action == Action.START:
                    state: dict[str, Any] = await api.post("/index/reindex")
                    err.print(f"Re-indexing into version {state['version']}.")
                elif action == Action.STATUS:
                    state = await api.get("/index/reindex")
                else:
                    state = await api.post(f"/index/reindex/{action.value}")
                if follow and action in (Action.START, Action.RESUME, Action.RETRY):
                    state = await _follow(api, state, err)
                return state

        try:
            final = asyncio.run(run())
        except ApiError as exc:
            err.print(f"[red]error[/]: {escape(str(exc))}")
            raise typer.Exit(1) from None
        out.print(_table(final))
        if final["status"] in ("cancelled", "waiting_for_retry"):
            raise typer.Exit(1)


async def _follow(api: Api, state: dict[str, Any], err: Console) -> dict[str, Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, TextColumn("{task.fields[note]}"), console=err) as progress:
        bar = progress.add_task("re-index", total=100, note="")
        while True:
            progress.update(bar, completed=state["progress_percentage"], note=_note(state))
            if state["status"] in ENDED:
                return state
            await asyncio.sleep(POLL_SECONDS)
            state = await api.get("/index/reindex")


def _note(state: dict[str, Any]) -> str:
    rate, eta = state.get("chunks_per_second"), state.get("eta_seconds")
    speed = f", {rate:.0f} chunks/s, {eta:.0f} s left" if rate and eta is not None else ""
    return (
        f"{state['status']}: {state['documents_done']}/{state['documents_total']} documents, "
        f"{state['chunks_done']}/{state['chunks_total']} chunks{speed}"
    )


def _table(state: dict[str, Any]) -> Table:
    table = Table(title="Re-index", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("version", state["version"] or "–")
    table.add_row("status", state["status"])
    table.add_row("documents", f"{state['documents_done']} / {state['documents_total']}")
    table.add_row("chunks", f"{state['chunks_done']} / {state['chunks_total']}")
    table.add_row("chunks/s", str(state.get("chunks_per_second") or "–"))
    table.add_row("from version", state.get("previous_version") or "–")
    table.add_row("switched", "yes" if state.get("swapped") else "no")
    for failed in state.get("failed") or []:
        table.add_row("failed", f"{failed['document_id']}: {failed['error']}")
    return table
