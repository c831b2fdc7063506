"""The small parts behind metrics and logs: log ids, the context-copying executor, error
codes of failed activities, fairness keys."""

from __future__ import annotations

import logging

import pytest
from temporalio.exceptions import ApplicationError

from core.ingestion.service import fair_share_priority
from core.observability import log_context
from core.observability.activity_metrics import ContextThreadPoolExecutor, error_code_of


def test_log_records_carry_the_ids_set_around_them(caplog: pytest.LogCaptureFixture) -> None:
    log_context.install()
    log = logging.getLogger("docchat.test")
    with caplog.at_level(logging.INFO, logger="docchat.test"):
        with log_context.ids(task="t1", document="d1", owner="alice"):
            log.info("inside")
        log.info("outside")
    inside, outside = caplog.records

    def ids(record: logging.LogRecord) -> tuple[str, str, str]:
        fields = record.__dict__
        return fields["task_id"], fields["document_id"], fields["principal"]

    assert ids(inside) == ("t1", "d1", "alice")
    assert ids(outside) == ("-", "-", "-")
    assert "[task=t1 document=d1 principal=alice]" in logging.Formatter(
        log_context.LOG_FORMAT
    ).format(inside)


def test_the_activity_executor_carries_the_ids_into_its_threads() -> None:
    with ContextThreadPoolExecutor(max_workers=1) as executor:
        with log_context.ids(task="t2", owner="bob"):
            seen = executor.submit(lambda: (log_context.task_id.get(), log_context.principal.get()))
        assert seen.result() == ("t2", "bob")
        # Set nowhere in the thread itself: a plain executor would see the defaults.
        assert executor.submit(log_context.task_id.get).result() == "-"


def test_failures_are_counted_by_their_typed_code_or_their_class() -> None:
    assert error_code_of(ApplicationError("x", type="encrypted_pdf", non_retryable=True)) == (
        "encrypted_pdf"
    )
    assert error_code_of(ConnectionError("down")) == "ConnectionError"


def test_each_principal_is_its_own_fairness_key_within_temporals_64_bytes() -> None:
    assert fair_share_priority("alice", enabled=True).fairness_key == "alice"
    long_a, long_b = "a" * 100, "a" * 99 + "b"
    key_a = fair_share_priority(long_a, enabled=True).fairness_key
    key_b = fair_share_priority(long_b, enabled=True).fairness_key
    assert key_a and key_b and key_a != key_b
    assert len(key_a.encode()) <= 64
    assert fair_share_priority("alice", enabled=False).fairness_key is None
