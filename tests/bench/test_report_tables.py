"""The bench report's scale and fairness tables: what each row says is computed from the run."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from bench.report import print_report

META = {"started_at": "now", "corpus": "corpus", "files": 9, "quick": False, "cpus": 2}
META |= {"torch": "2"}


def render(results: dict[str, object]) -> str:
    out = StringIO()
    print_report({"meta": META} | results, Console(file=out, width=200))
    return out.getvalue()


def row(workers: int, seconds: float) -> dict[str, object]:
    return {
        "workers": workers, "documents": 9, "pages": 300, "failed": 0, "seconds": seconds,
        "pages_per_s": round(300 / seconds, 2), "load_1min": 2.0, "cpus": 2,
    }  # fmt: skip


def test_scale_table_shows_each_worker_count_against_one_worker() -> None:
    text = render(
        {
            "scale": {
                "corpus": [row(1, 60.0), row(2, 40.0), row(4, 48.0)],
                "large_document": {
                    "in sequence": {"pages": 400, "seconds": 80.0, "pages_per_s": 5.0},
                    "in parallel": {"pages": 400, "seconds": 50.0, "pages_per_s": 8.0},
                },
            }
        }
    )
    assert "1.50×" in text and "1.25×" in text  # 60/40 and 60/48: from the seconds, not given
    assert "in sequence" in text and "in parallel" in text


def test_fairness_table_puts_fifo_beside_fair_shares() -> None:
    fair = {
        "queued_for_other_principal": 200, "fair_shares": True, "single_alone_s": 2.0,
        "single_with_backlog_s": 4.1, "slowdown": 2.05,
    }  # fmt: skip
    fifo = fair | {"fair_shares": False, "single_with_backlog_s": 90.0, "slowdown": 45.0}
    text = render({"fairness": {**fair, "fifo": fifo}})
    assert "off (FIFO)" in text and "45.0×" in text and "2.05×" in text


def test_a_failed_scale_run_is_reported_not_raised() -> None:
    assert "scale: failed" in render({"scale": {"error": "failed (exit 1)"}})
