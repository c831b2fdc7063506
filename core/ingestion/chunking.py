"""Split page texts into chunks sized by the embedding model's own tokenizer.

Chunks never cross a page boundary, so every chunk cites exactly one page, and none is longer
than the model's window, so nothing is silently truncated at embedding time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from langchain_text_splitters import RecursiveCharacterTextSplitter
from transformers import PreTrainedTokenizerBase

from core.search.embeddings import MAX_TEXT_TOKENS
from core.texts import Chunk, PageText, location_label


class TokenChunker:
    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, *, chunk_tokens: int, overlap_tokens: int
    ) -> None:
        if chunk_tokens > MAX_TEXT_TOKENS:
            raise ValueError(f"chunk_tokens must be at most {MAX_TEXT_TOKENS}")
        self._tokenizer = tokenizer
        self._limit = chunk_tokens
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_tokens,
            chunk_overlap=min(overlap_tokens, chunk_tokens // 2),
        )

    def chunk_pages(self, pages: Iterable[PageText]) -> Iterator[Chunk]:
        index = 0
        for page in pages:
            for text in self._splitter.split_text(page.text):
                for piece in self._fit(text.strip()):
                    yield Chunk(
                        index=index,
                        page=page.page,
                        text=piece[0],
                        token_count=piece[1],
                        label=location_label(page.page, page.label),
                    )
                    index += 1

    def _fit(self, text: str) -> Iterator[tuple[str, int]]:
        """Yield ``(text, tokens)``, cutting by tokens when no separator kept a piece small."""
        if not text:
            return
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        if len(ids) <= self._limit:
            yield text, len(ids)
            return
        for start in range(0, len(ids), self._limit):
            window = ids[start : start + self._limit]
            piece: str = str(self._tokenizer.decode(window))
            yield piece.strip(), len(window)
