"""One benchmark in its own process, so its peak memory and model load are its own.

python -m bench.child NAME --corpus DIR --workdir DIR --logs DIR --out FILE [--formats DIR]

NAME is one of BENCHMARKS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.corpus import DEFAULT_FORMATS, list_pdfs
from bench.procstat import own_peak_rss_mb, raise_open_files_limit
from bench.retrieval import load_questions

BENCHMARKS = (
    "a",
    "b",
    "c",
    "chunking",
    "live",
    "answers",
    "reindex",
    "formats",
    "fairness",
    "replace",
    "scale",
)


def run(
    name: str,
    corpus: Path,
    workdir: Path,
    logs: Path,
    *,
    quick: bool,
    modes: str,
    formats: Path = DEFAULT_FORMATS,
) -> dict[str, Any]:
    files = list_pdfs(corpus, quick=quick)
    questions = load_questions()
    if name == "a":
        from bench.e2e import run_e2e

        return run_e2e(files, workdir, logs, questions=questions)
    if name == "b":
        from bench.inprocess import run_inprocess
        from bench.retrieval_formats import run_formats_retrieval

        result = run_inprocess(files, workdir, questions=questions)
        # The non-PDF documents of ../shared/formats, in an index of their own (not timed).
        result["retrieval_formats"] = run_formats_retrieval(formats, workdir / "formats")
    elif name == "c":
        from bench.langchain_baseline import run_langchain

        result = run_langchain(files, workdir, questions=questions)
    elif name == "chunking":
        from bench.chunking import run_chunking

        result = run_chunking(files, workdir, questions=questions, quick=quick)
    elif name == "answers":
        from bench.answers import run_answers

        result = run_answers(files, workdir, questions=questions, modes=modes.split(","))
    elif name == "formats":
        from bench.formats import run_formats

        result = run_formats(formats, corpus, workdir, questions=questions, quick=quick)
    elif name == "reindex":
        from bench.reindex import run_reindex

        result = run_reindex(files, workdir)
    elif name == "fairness":
        from bench.fairness import run as run_fairness

        return run_fairness(workdir, quick=quick)
    elif name == "scale":
        from bench.scale import run as run_scale

        return run_scale(corpus, workdir, quick=quick)
    elif name == "replace":
        from bench.replace import run_replace

        result = run_replace(corpus, workdir, logs, quick=quick)
    elif name == "live":
        from bench.live import run_live

        return asyncio.run(run_live(files, workdir, logs, quick=quick))
    else:
        raise SystemExit(f"unknown benchmark {name!r}")
    result["peak_rss_mb"] = own_peak_rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--modes", default="auto,extractive,generative")
    parser.add_argument("--formats", type=Path, default=DEFAULT_FORMATS)
    args = parser.parse_args()
    raise_open_files_limit()  # when run on its own; `python -m bench` has raised it already
    started = time.perf_counter()
    result = run(
        args.name,
        args.corpus,
        args.workdir,
        args.logs,
        quick=args.quick,
        modes=args.modes,
        formats=args.formats,
    )
    result["process_s"] = time.perf_counter() - started
    args.out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
