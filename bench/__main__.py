"""``python -m bench``: run the benchmarks, print the tables, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.corpus import DEFAULT_CORPUS, DEFAULT_FORMATS, REPO, list_pdfs
from bench.procstat import raise_open_files_limit
from bench.report import print_report, ratios, targets, throughput

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = (
    "ingestion",
    "reindex",
    "retrieval",
    "chunking",
    "live",
    "answers",
    "formats",
    "fairness",
    "replace",
    "scale",
)
NAMES = {
    "a": "(a) docchat API + Temporal, end to end",
    "b": "(b) docchat code in-process",
    "c": "(c) LangChain baseline",
    "chunking": "chunking: chunk size and overlap against hybrid recall and embedded tokens",
    "live": "live paths",
    "answers": "answers: key facts, citations, time to first chunk",
    "formats": "formats: throughput per format, OCR pages/s, OCR twin recall",
    "reindex": "re-index throughput next to first-time ingestion",
    "fairness": "fairness: one small document with another principal's backlog queued",
    "replace": "a new version of a long document, one page edited",
    "scale": "scale-out: 1, 2 and 4 worker processes; one large document's batches",
}
CHILD_TIMEOUT_S = 3 * 3600


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Ingestion throughput, retrieval recall, live-path latency, answer quality "
        "and formats/OCR of docchat.",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="a directory of PDFs (default: %(default)s)",
    )
    parser.add_argument(
        "--formats",
        type=Path,
        default=DEFAULT_FORMATS,
        help="a directory of one file per format, for the formats section (default: %(default)s)",
    )
    parser.add_argument("--only", choices=SECTIONS, help="run one section")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast pass: the corpus without its 117-page document, 5 instead of 20 documents "
        "under the status load, 100 instead of 1,000 WebSocket clients, a 6-point chunking grid",
    )
    parser.add_argument(
        "--modes",
        default="auto,extractive,generative",
        help="answer modes the answers table asks in, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "latest.json",
        help="results JSON (default: %(default)s)",
    )
    return parser.parse_args(argv)


def run_child(name: str, args: argparse.Namespace, tmp: Path, logs: Path) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    workdir = tmp / name
    workdir.mkdir()
    log = logs / f"{name}.log"
    command = [
        sys.executable, "-m", "bench.child", name,
        "--corpus", str(args.corpus), "--workdir", str(workdir),
        "--logs", str(logs / name), "--out", str(out),
        "--modes", args.modes, "--formats", str(args.formats),
    ] + (["--quick"] if args.quick else [])  # fmt: skip
    print(f"[bench] {NAMES[name]} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with log.open("wb") as sink:
        try:
            code = subprocess.run(
                command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, timeout=CHILD_TIMEOUT_S
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    elapsed = time.perf_counter() - started
    if code != 0 or not out.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"[bench]   failed after {elapsed:.0f} s; last lines of {log}:", file=sys.stderr)
        print("\n".join(f"    {line}" for line in tail), file=sys.stderr, flush=True)
        return {"error": f"failed (exit {code}); see {log}"}
    print(f"[bench]   done in {elapsed:.0f} s", file=sys.stderr, flush=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.corpus = args.corpus.resolve()
    if not args.corpus.is_dir():
        print(
            f"no corpus at {args.corpus}: pass --corpus DIR (a directory of PDFs)", file=sys.stderr
        )
        return 2
    files = list_pdfs(args.corpus, quick=args.quick)
    if not files:
        print(f"no PDFs in {args.corpus}", file=sys.stderr)
        return 2
    nofile = raise_open_files_limit()  # before any child starts: they inherit it
    sections = [args.only] if args.only else list(SECTIONS)
    pipelines = (
        ["a", "b", "c"]
        if "ingestion" in sections
        else ["b", "c"]
        if "retrieval" in sections
        else []
    )

    import torch

    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "corpus": str(args.corpus),
            "files": len(files),
            "quick": args.quick,
            "sections": sections,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "open_files_limit": nofile,
        }
    }
    logs = RESULTS / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="docchat-bench-") as tmp:
        by_pipeline: dict[str, dict[str, Any]] = {}
        for name in pipelines:
            by_pipeline[name] = run_child(name, args, Path(tmp), logs)
            by_pipeline[name].update(
                throughput(by_pipeline[name]) if "error" not in by_pipeline[name] else {}
            )
        if "ingestion" in sections:
            results["ingestion"] = {**by_pipeline, "ratios": ratios(by_pipeline)}
        elif by_pipeline:
            results["retrieval"] = by_pipeline
        if "chunking" in sections:
            results["chunking"] = run_child("chunking", args, Path(tmp), logs)
        if "reindex" in sections:
            results["reindex"] = run_child("reindex", args, Path(tmp), logs)
        if "live" in sections:
            results["live"] = run_child("live", args, Path(tmp), logs)
        if "answers" in sections:
            results["answers"] = run_child("answers", args, Path(tmp), logs)
        if "formats" in sections:
            results["formats"] = run_child("formats", args, Path(tmp), logs)
        if "fairness" in sections:
            results["fairness"] = run_child("fairness", args, Path(tmp), logs)
        if "replace" in sections:
            results["replace"] = run_child("replace", args, Path(tmp), logs)
        if "scale" in sections:
            results["scale"] = run_child("scale", args, Path(tmp), logs)
    results["targets"] = targets(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    # Piped output (make bench | tee) gets the full width rather than rich's 80 columns.
    print_report(results, Console(width=None if sys.stdout.isatty() else 150))
    print(f"results: {args.out}   logs: {logs}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
