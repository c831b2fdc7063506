"""The chunking section's table (bench/chunking.py): one row per chunk size and overlap."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

COLUMNS = (
    "setting",
    "chunks",
    "tokens",
    "vs default",
    "embed s (CPU)",
    "ingest s",
    "hybrid R@5",
    "MRR@10",
    "en/de/kw-heavy",
    "dense/kw R@5",
    "hits/10k tok",
    "frontier",
)


def print_chunking(console: Console, chunking: dict[str, Any]) -> None:
    if "error" in chunking:
        console.print(f"[red]chunking: {chunking['error']}")
        return
    summary = chunking["summary"]
    table = Table(
        title=f"Chunk size and overlap, hybrid retrieval ({chunking['questions']} questions, "
        f"{chunking['pages']} pages; corpus extracted once in {chunking['extract_s']:.1f} s)",
        caption=f"default {summary['default']} (bold). tokens: embedded, special tokens "
        "included. en/de/kw-heavy: hybrid recall@5 per group; dense/kw: each side alone. "
        "frontier: no other setting finds as many answers at 5 (hybrid) for fewer tokens. "
        "ingest s: extract + chunk + embed + store. Beat the default outright: "
        f"{', '.join(summary['beat_default']) or 'none'}",
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in chunking["points"]:
        hybrid = _groups(row, "hybrid")
        cpu = f" ({row['embed_cpu_s']:.1f})" if "embed_cpu_s" in row else ""
        cells = [
            row["label"],
            f"{row['chunks']:,}",
            f"{row['tokens']:,}",
            _pct(row["vs_default"]["tokens_pct"]),
            f"{row['embed_s']:.1f}{cpu}",
            f"{row['ingest_s']:.1f}",
            f"{_metric(hybrid, 'all', 'recall@5')} ({row['hits@5']})",
            _metric(hybrid, "all", "mrr@10"),
            "/".join(_metric(hybrid, g, "recall@5") for g in ("en", "de", "keyword-heavy")),
            "/".join(_metric(_groups(row, m), "all", "recall@5") for m in ("dense", "keyword")),
            f"{row['hits_per_10k_tokens']:.2f}",
            "yes" if row["frontier"] else "",
        ]
        bold = row["label"] == summary["default"]
        table.add_row(*[f"[bold]{cell}[/bold]" if bold and cell else cell for cell in cells])
    console.print(table)


def _groups(row: dict[str, Any], mode: str) -> dict[str, Any]:
    groups: dict[str, Any] = (row.get("retrieval") or {}).get(mode, {}).get("groups", {})
    return groups


def _metric(groups: dict[str, Any], group: str, name: str) -> str:
    value = (groups.get(group) or {}).get(name)
    return "—" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    if value is None:
        return "—"
    return "0 %" if abs(value) < 0.05 else f"{value:+.1f} %"
