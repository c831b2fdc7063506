"""What `python worker.py --queues ...` serves, for each role and queue setting."""

from __future__ import annotations

import pytest

from core.settings import ConfigurationError, Settings, worker_roles
from tests.helpers import load_worker_healthcheck
from worker import plan_queues

SPLIT = {"text_task_queue": "q-text", "embedding_task_queue": "q-embedding"}


def settings(**overrides: object) -> Settings:
    return Settings(temporal_task_queue="q", **overrides)  # type: ignore[arg-type]


def test_one_queue_serves_everything_by_default() -> None:
    plan = plan_queues(settings(), worker_roles("text,embedding"))
    assert plan.queues == (("q", "all"),)
    assert plan.embeds


def test_split_queues_both_roles_poll_all_three() -> None:
    plan = plan_queues(settings(**SPLIT), worker_roles("text,embedding"))
    assert plan.queues == (("q", "all"), ("q-text", "text"), ("q-embedding", "embedding"))


def test_a_text_worker_leaves_the_embedding_queue_alone_and_loads_no_model() -> None:
    plan = plan_queues(settings(**SPLIT), worker_roles("text"))
    assert plan.queues == (("q", "all"), ("q-text", "text"))
    # "all" on the workflows' queue serves runs that predate the split: the model loads lazily
    assert not plan.embeds


def test_a_text_worker_embeds_when_embedding_shares_its_queue() -> None:
    assert plan_queues(settings(), worker_roles("text")).embeds


def test_an_embedding_worker_polls_only_its_queue() -> None:
    plan = plan_queues(settings(**SPLIT), worker_roles("embedding"))
    assert plan.queues == (("q-embedding", "embedding"),)


def test_an_embedding_worker_without_its_own_queue_is_refused() -> None:
    # It would take text activities it has not registered off the shared queue and fail them.
    with pytest.raises(ConfigurationError, match="DOCCHAT_EMBEDDING_TASK_QUEUE"):
        plan_queues(settings(), worker_roles("embedding"))


@pytest.mark.parametrize("value", ["", "gpu", "text,ocr"])
def test_unknown_roles_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="text, embedding"):
        worker_roles(value)


def test_the_healthcheck_asks_for_the_queue_the_worker_polls() -> None:
    served_queue = load_worker_healthcheck().served_queue
    assert served_queue(settings(**SPLIT, worker_queues="embedding")) == "q-embedding"
    assert served_queue(settings(**SPLIT, worker_queues="text")) == "q"
    assert served_queue(settings(**SPLIT)) == "q"
