"""The answers table's yardsticks: key facts that are really on their pages, and the checks."""

from __future__ import annotations

from pathlib import Path

from bench.answers import cited, has_key_fact, repeated_line
from bench.report import answer_targets
from bench.retrieval import load_questions
from core.ingestion.extraction import pdf


def flat(text: str) -> str:
    return " ".join(text.split()).casefold()


def test_every_key_fact_is_on_one_of_its_answer_pages(corpus: Path) -> None:
    with_facts = [q for q in load_questions() if q.key_facts]
    assert len(with_facts) >= 50
    pages: dict[tuple[str, int], str] = {}
    for question in with_facts:
        texts = []
        for answer in question.answers:
            for page in answer.pages:
                key = (answer.file, page)
                if key not in pages:
                    extracted = next(pdf.extract_pages(corpus / answer.file, page, page))
                    pages[key] = flat(extracted.text)
                texts.append(pages[key])
        assert any(flat(fact) in text for fact in question.key_facts for text in texts), question.id


def test_the_checks_an_answer_is_judged_by() -> None:
    answer = "> Finland 5.5 338,424 Helsinki Finnish, Swedish [2]\n\nIt is big [1, 3]."
    assert has_key_fact(answer, ["338,424"]) and has_key_fact(answer, ["helsinki  FINNISH"])
    assert not has_key_fact(answer, ["5,5"])
    assert cited(answer) == {1, 2, 3}
    assert not repeated_line(answer)
    assert repeated_line("The answer is: The answer is:\nThe answer is:")
    assert repeated_line("Vienna.\nVienna.")


def test_targets_judge_the_embedded_default_run() -> None:
    run = {
        "backend": "llama_cpp", "mode": "auto", "answers": 10, "key_fact": 0.8,
        "cites_right_page": 0.85, "first_chunk_p50_s": 0.5, "first_chunk_p90_s": 1.2,
        "first_chunk_max_s": 2.0, "repeated_line": 0,
    }  # fmt: skip
    other = {**run, "backend": "ollama", "key_fact": 0.1}
    verdicts = [t["verdict"] for t in answer_targets({"runs": [other, run]})]
    assert verdicts == ["met", "not met", "met", "met"]
    assert answer_targets({"runs": [other]}) == []
