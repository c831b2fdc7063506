"""``python -m bench.chunking_timing``: embedding seconds of a few chunk settings, interleaved.

The chunking grid (bench/chunking.py) measures each setting once, one after the other, so on
a shared machine a change in the load between two points reads as a difference between them.
Here the same pages are cut by each setting and embedded in rounds (A, B, C, then B, C, A, ...),
so every setting sees the same mix of load; wall and CPU seconds are reported per round.

python -m bench.chunking_timing --points 128/32,200/0 --rounds 3 --file GeoTopo-komprimiert.pdf
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.chunking import GridPoint, embedded_tokens
from bench.corpus import DEFAULT_CORPUS
from bench.inprocess import extract_document
from core.ingestion.chunking import TokenChunker
from core.ingestion.offload import EmbedderConfig
from core.settings import Settings


def parse_point(text: str) -> GridPoint:
    size, overlap = text.split("/")
    return GridPoint(int(size), int(overlap))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chunking_timing", description=__doc__)
    parser.add_argument("--points", default="128/32,200/0", help="TOKENS/OVERLAP,...")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file", type=Path, default=DEFAULT_CORPUS / "GeoTopo-komprimiert.pdf")
    parser.add_argument("--pages", type=int, default=0, help="only the first N pages (0: all)")
    parser.add_argument("--out", type=Path, help="also write the rounds as JSON here")
    args = parser.parse_args(argv)
    settings = Settings(data_dir=Path("/tmp"))
    embedder = EmbedderConfig.from_settings(settings).load()
    embedder.embed_query("warm-up")
    pages = extract_document(args.file, settings)
    pages = pages[: args.pages] if args.pages else pages
    points = [parse_point(p) for p in args.points.split(",")]
    texts: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}
    for point in points:
        chunker = TokenChunker(
            embedder.tokenizer, chunk_tokens=point.chunk_tokens, overlap_tokens=point.overlap_tokens
        )
        chunks = list(chunker.chunk_pages(pages))
        texts[point.label] = [chunk.text for chunk in chunks]
        tokens[point.label] = embedded_tokens(chunks, embedder)
    step = settings.vectorize_chunks_per_activity
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        shift = number % len(points)  # each setting takes each place in the order in turn
        for point in points[shift:] + points[:shift]:
            batch_texts = texts[point.label]
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(batch_texts), step):
                embedder.embed(batch_texts[start : start + step])
            row = {
                "round": number + 1,
                "point": point.label,
                "chunks": len(batch_texts),
                "tokens": tokens[point.label],
                "wall_s": round(time.perf_counter() - wall, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
            }
            rounds.append(row)
            print(json.dumps(row), flush=True)
    for point in points:
        mine = [r for r in rounds if r["point"] == point.label]
        print(
            f"{point.label:>7}: {len(texts[point.label])} chunks, {tokens[point.label]:,} tokens, "
            f"wall min {min(r['wall_s'] for r in mine):.1f} s, "
            f"CPU min {min(r['cpu_s'] for r in mine):.1f} s"
        )
    if args.out:
        args.out.write_text(json.dumps({"file": args.file.name, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
