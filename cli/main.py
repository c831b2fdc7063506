"""``docchat``: ingest documents and folders with live progress, see and retry tasks, ask.

Talks to the API at ``--url`` (``DOCCHAT_URL``), with ``--api-key`` (``DOCCHAT_API_KEY``) sent
as a bearer token. Progress and notes go to stderr; tables and answers to stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table

from cli.client import DEFAULT_URL, Api, ApiError
from cli.files import collect_files
from cli.reindex import register as register_reindex

app = typer.Typer(
    help="docchat from the command line: ingest documents, follow and retry tasks, ask questions.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

Url = Annotated[
    str, typer.Option("--url", envvar="DOCCHAT_URL", help="The docchat API.", show_envvar=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="DOCCHAT_API_KEY",
        help="Sent as 'Authorization: Bearer'.",
        show_envvar=True,
        show_default=False,
    ),
]

UPLOADS_AT_ONCE = 4
STEP_WORDS = {
    "upload": "checking the file",
    "extract": "extracting text",
    "chunk": "splitting into passages",
    "vectorize": "indexing for search",
    "done": "finishing",
}
T = TypeVar("T")


@dataclass
class Outcome:
    file: str
    result: str  # completed | failed | cancelled | duplicate
    task: dict[str, Any] | None = None
    reason: str = ""
    error_code: str | None = None  # why it failed: the refusal's or the task's code


# --- docchat ingest ------------------------------------------------------------------------


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            readable=True,
            help="Documents, or folders of them (every file in it; see --recursive, --glob).",
        ),
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Also the files in a folder's subfolders.")
    ] = False,
    globs: Annotated[
        list[str] | None,
        typer.Option(
            "--glob",
            "-g",
            help="Only a folder's files whose name (or path inside it) matches; repeatable. "
            "Files named on the command line are always sent.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Upload documents (any accepted format, or whole folders) and follow each to its end with
    a progress bar; exit 1 if any is refused or fails."""
    found = collect_files(paths, recursive=recursive, globs=globs or [])
    for note in found.notes:
        err.print(f"[dim]{escape(note)}[/]")
    if not found.files:
        err.print("[red]error[/]: no files to ingest")
        raise typer.Exit(1)

    async def run(api: Api) -> list[Outcome]:
        with _progress() as progress:
            gate = asyncio.Semaphore(UPLOADS_AT_ONCE)

            async def one(path: Path, name: str) -> Outcome:
                bar = progress.add_task(escape(name), total=100, stage="waiting")
                async with gate:
                    return await _ingest_one(api, path, name, progress, bar)

            return await asyncio.gather(*(one(path, name) for path, name in found.files))

    outcomes = _run(url, api_key, run)
    counts = {kind: sum(o.result == kind for o in outcomes) for kind in _RESULT_STYLES}
    if as_json:
        sys.stdout.write(json.dumps(_summary_json(outcomes, counts), indent=2) + "\n")
    else:
        out.print(_summary(outcomes))
        out.print(", ".join(f"{count} {kind}" for kind, count in counts.items() if count))
    if any(o.result in ("failed", "cancelled") for o in outcomes):
        raise typer.Exit(1)


async def _ingest_one(api: Api, path: Path, name: str, progress: Progress, bar: TaskID) -> Outcome:
    """Upload ``path`` (shown as ``name``) and follow its task to the end."""
    progress.update(bar, stage="uploading")
    try:
        content = await asyncio.to_thread(path.read_bytes)
        accepted = await api.upload(path, content)
    except (ApiError, OSError) as exc:
        failure = exc if isinstance(exc, ApiError) else ApiError("unreadable", str(exc))
        _fail(progress, bar, f"refused: {failure.code}")
        err.print(f"[red]error[/]: {escape(name)}: {escape(str(failure))}")
        return Outcome(name, "failed", reason=str(failure), error_code=failure.code)
    try:
        task = await _follow(api, accepted["task_id"], progress, bar)
    except ApiError as exc:
        _fail(progress, bar, exc.code)
        err.print(f"[red]error[/]: {escape(name)}: {escape(str(exc))}")
        return Outcome(name, "failed", reason=str(exc), error_code=exc.code)
    if task["status"] == "completed":
        if accepted["duplicate"]:
            return Outcome(name, "duplicate", task, "same content as an earlier upload")
        return Outcome(name, "completed", task)
    reason = f"{task['error_code']}: {task['error_message']}" if task["error_code"] else ""
    if accepted["duplicate"]:
        reason = f"same content as an earlier upload, which did not complete: {reason}"
    if task["state"] == "waiting_for_retry":
        reason += f"\nwhen the cause is fixed: docchat retry {task['task_id']}"
    err.print(f"[red]error[/]: {escape(name)}: {escape(reason or task['status'])}")
    return Outcome(name, task["status"], task, reason, task["error_code"])


async def _follow(api: Api, task_id: str, progress: Progress, bar: TaskID) -> dict[str, Any]:
    """Show the task's progress (SSE) until it ends, or fails: the task's last state."""
    last: dict[str, Any] | None = None
    async with api.stream("GET", f"/docs/processing/{task_id}/events") as events:
        async for name, task in events:
            if name != "progress":
                break
            last = task
            done = 100.0 if task["status"] == "completed" else task["progress_percentage"]
            progress.update(bar, completed=done, stage=_stage(task))
            if task["status"] == "failed":  # a failure waiting for a retry too: stop here
                break
    if last is None:
        raise ApiError("no_progress", "the progress stream ended without a state")
    return last


def _stage(task: dict[str, Any]) -> str:
    # ``status`` is the seed's stage; ``state`` the lifecycle behind it (queued, retrying, ...).
    status, state = str(task["status"]), str(task["state"])
    if status in ("completed", "cancelled"):
        return status
    if status == "failed":
        waiting = ", can be retried" if state == "waiting_for_retry" else ""
        return f"[red]failed: {task['error_code']}{waiting}[/]"
    step = str(task["current_step"])
    words = STEP_WORDS.get(step, step)
    if step == "extract" and task["page_count"]:
        words += f" (page {task['pages_extracted']}/{task['page_count']})"
    if step == "vectorize" and task["chunk_count"]:
        words += f" ({task['chunks_embedded']}/{task['chunk_count']})"
    if state in ("queued", "retrying"):
        words += f", {state}"
    return words


def _fail(progress: Progress, bar: TaskID, why: str) -> None:
    progress.update(bar, stage=f"[red]{escape(why)}[/]")


_RESULT_STYLES = {"completed": "green", "duplicate": "cyan", "failed": "red", "cancelled": "red"}


def _summary(outcomes: Sequence[Outcome]) -> Table:
    table = Table(title="Ingest summary")
    table.add_column("file", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("pages", justify="right", no_wrap=True)
    table.add_column("chunks", justify="right", no_wrap=True)
    table.add_column("details", overflow="fold", ratio=1)
    for outcome in outcomes:
        task = outcome.task or {}
        style = _RESULT_STYLES.get(outcome.result, "")
        table.add_row(
            escape(outcome.file),
            f"[{style}]{outcome.result}[/]",
            _count(task.get("page_count")),
            _count(task.get("chunk_count")),
            escape(outcome.reason),
        )
    return table


def _summary_json(outcomes: Sequence[Outcome], counts: dict[str, int]) -> dict[str, Any]:
    files = []
    for outcome in outcomes:
        task = outcome.task or {}
        files.append(
            {
                "file": outcome.file,
                "result": outcome.result,
                "error_code": outcome.error_code,
                "reason": outcome.reason,
                "document_id": task.get("document_id"),
                "task_id": task.get("task_id"),
                "page_count": task.get("page_count"),
                "chunk_count": task.get("chunk_count"),
            }
        )
    return {"files": files, "counts": counts}


# --- docchat status / retry ----------------------------------------------------------------


@app.command()
def status(
    task: Annotated[str | None, typer.Argument(help="A task id; without it, all.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """One task's status, or the active tasks and the document list."""

    async def one(api: Api) -> None:
        out.print(_task_table(await api.get(f"/docs/processing/{task}/status")))

    async def everything(api: Api) -> None:
        active, documents = await asyncio.gather(
            api.get("/docs/processing/active"), api.get("/docs", limit=500)
        )
        table = Table(title="Active tasks")
        for column in ("task", "status", "state", "step", "progress"):
            table.add_column(column)
        for item in active:
            progress = f"{item['progress_percentage']:.0f} %"
            row = (item["task_id"], item["status"], item["state"], item["current_step"], progress)
            table.add_row(*row)
        out.print(table if active else "No active tasks.")
        table = Table(title="Documents")
        for column in ("document", "file", "status", "pages", "chunks", "uploaded"):
            table.add_column(column, overflow="fold")
        for doc in documents:
            table.add_row(
                doc["id"],
                escape(doc["filename"]),
                doc["status"],
                _count(doc["page_count"]),
                _count(doc["chunk_count"]),
                doc["created_at"][:19].replace("T", " "),
            )
        out.print(table if documents else "No documents.")

    _run(url, api_key, one if task else everything)


@app.command()
def retry(
    task: Annotated[str, typer.Argument(help="The failed task's id.")],
    follow: Annotated[bool, typer.Option(help="Show its progress until it ends.")] = True,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Resume a failed task at the step that failed; exit 1 if it cannot or fails again."""

    async def run(api: Api) -> dict[str, Any]:
        resumed: dict[str, Any] = await api.post(f"/docs/processing/{task}/retry")
        err.print(f"Task {task} resumed at step {resumed['current_step']}.")
        if not follow:
            return resumed
        with _progress() as progress:
            bar = progress.add_task(task, total=100, stage=_stage(resumed))
            return await _follow(api, task, progress, bar)

    final = _run(url, api_key, run)
    out.print(_task_table(final))
    if final["status"] in ("failed", "cancelled"):
        raise typer.Exit(1)


# --- docchat replace -----------------------------------------------------------------------


@app.command()
def replace(
    document_id: Annotated[str, typer.Argument(help="The document to give a new version.")],
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Its new file."),
    ],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Upload a new version of a document and follow it to its end: only the passages whose
    text changed are embedded again, and search answers from the old version until then."""

    async def run(api: Api) -> Outcome:
        with _progress() as progress:
            bar = progress.add_task(file.name, total=100, stage="uploading")
            try:
                content = await asyncio.to_thread(file.read_bytes)
                accepted = await api.replace(document_id, file, content)
                task = await _follow(api, accepted["task_id"], progress, bar)
            except ApiError as exc:
                _fail(progress, bar, exc.code)
                err.print(f"[red]error[/]: {escape(file.name)}: {escape(str(exc))}")
                return Outcome(file.name, "failed", reason=str(exc))
        if accepted["duplicate"]:
            return Outcome(file.name, "duplicate", task, "the document already has these bytes")
        return Outcome(file.name, task["status"], task)

    outcome = _run(url, api_key, run)
    task = outcome.task
    if outcome.result == "completed" and task is not None:
        total = task["chunk_count"] or 0
        embedded = total - (task.get("chunks_reused") or 0)
        out.print(
            f"{escape(file.name)}: new version of {document_id}, "
            f"{embedded} of {total} passages embedded, the others unchanged"
        )
    elif outcome.result == "duplicate":
        out.print(f"{escape(file.name)}: {outcome.reason}, nothing to do")
    else:
        if task is not None and task.get("error_code"):
            err.print(f"[red]error[/]: {task['error_code']}: {task['error_message']}")
        err.print("the document keeps its current version")
        raise typer.Exit(1)


def _task_table(task: dict[str, Any]) -> Table:
    table = Table(title=f"Task {task['task_id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("status", task["status"]),
        ("state", task["state"]),
        ("step", task["current_step"]),
        ("progress", f"{task['progress_percentage']:.2f} %"),
        ("document", task["document_id"]),
        ("pages", f"{task['pages_extracted']} of {_count(task['page_count'])} extracted"),
        ("chunks", f"{task['chunks_embedded']} of {_count(task['chunk_count'])} embedded"),
    ]
    if task["error_code"]:
        rows.append(("error", f"{task['error_code']}: {task['error_message']}"))
        rows.append(("retryable", "yes" if task["retryable"] else "no"))
    if task["attempt"]:
        rows.append(("attempt", f"{task['attempt']} ({task['last_failure'] or 'no failure'})"))
    rows += [(name, task[name] or "–") for name in ("created_at", "completed_at")]
    for name, value in rows:
        table.add_row(name, escape(str(value)))
    return table


# --- docchat ask ---------------------------------------------------------------------------


class AnswerModeOption(StrEnum):
    """The API's answer modes (``mode`` of ``POST /chat/{id}/ask``)."""

    auto = "auto"
    extractive = "extractive"
    generative = "generative"


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    session: Annotated[
        int | None,
        typer.Option("--session", "-s", help="Chat session id (default: a new session)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="A model from GET /chat/models.")
    ] = None,
    mode: Annotated[
        AnswerModeOption,
        typer.Option(
            "--mode",
            help="extractive: quotes only; generative: the model writes; auto: quotes first "
            "on the embedded model, the model's answer with a strong one.",
        ),
    ] = AnswerModeOption.auto,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Ask a question over your documents; the answer streams, then its sources."""

    async def run(api: Api) -> None:
        session_id = session
        if session_id is None:
            created = await api.post("/chat/sessions", {"title": question[:200]})
            session_id = created["id"]
        err.print(f"[dim]session {session_id} (continue with --session {session_id})[/]")
        body: dict[str, Any] = {"question": question, "mode": mode.value}
        if model:
            body["model"] = model
        async with api.stream("POST", f"/chat/{session_id}/ask/stream", body) as events:
            async for name, event in events:
                if name == "chunk":
                    sys.stdout.write(event["content"])
                    sys.stdout.flush()
                elif name == "model_fallback":
                    used, why = escape(event["model"]), escape(event["detail"])
                    err.print(f"[yellow]answered by {used}[/]: {why}")
                elif name == "complete":
                    _print_sources(event)
                    return
                elif name == "error":
                    sys.stdout.write("\n")
                    error = event["error"]
                    raise ApiError(error["error_code"], error["message"])
        raise ApiError("stream_ended", "the answer stopped before it was complete")

    _run(url, api_key, run)


def _print_sources(complete: dict[str, Any]) -> None:
    sys.stdout.write("\n")
    confidence = complete.get("confidence")
    if confidence == "low":
        score = complete.get("confidence_score")
        err.print(f"[yellow]low confidence[/] [dim](best passage scores {score:.2f})[/]")
    if not complete["sources"]:
        err.print(f"[dim]({complete['model'] or 'no model'}; no sources)[/]")
        return
    out.print("\n[bold]Sources[/]")
    for number, source in enumerate(complete["sources"], start=1):
        where = source.get("label") or f"page {source['page']}"
        place = f"{source['filename']}, {where}"
        out.print(f"  [{number}] {escape(place)} [dim](score {source['score']:.2f})[/]")


# --- plumbing ------------------------------------------------------------------------------


def _run(url: str, api_key: str | None, work: Callable[[Api], Awaitable[T]]) -> T:
    """Run ``work`` against the API; an API error is printed and exits with status 1."""

    async def main() -> T:
        async with Api(url, api_key) as api:
            return await work(api)

    try:
        return asyncio.run(main())
    except ApiError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[stage]}"),
        console=err,
    )


def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


# docchat reindex: in its own module.
register_reindex(app, out, err)

if __name__ == "__main__":
    app()
