"""Container healthcheck for the ingest worker: is *this* container polling its task queue?

Exits 0 when Temporal lists a poller on its task queue (workflow or activity side; an
embedding-only worker's is DOCCHAT_EMBEDDING_TASK_QUEUE) whose
identity names this host, 1 otherwise. The Python SDK's default identity is
``<pid>@<hostname>`` and a container's hostname is its own id, so one replica's health says
nothing about another's. Temporal forgets a poller a few minutes after its last poll, so a
worker that stops polling turns unhealthy after that. Reads the worker's ``DOCCHAT_*`` settings.

    python deploy/worker_healthcheck.py   # from the project root, as in docker-compose.yml
"""

from __future__ import annotations

import asyncio
import socket
import sys

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from core.settings import Settings, worker_roles
from core.temporal import connect_temporal

TIMEOUT_SECONDS = 10.0
QUEUE_TYPES = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


async def poller_identities(client: Client, task_queue: str) -> set[str]:
    identities: set[str] = set()
    for queue_type in QUEUE_TYPES:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=queue_type,
            )
        )
        identities.update(poller.identity for poller in response.pollers)
    return identities


def served_queue(settings: Settings) -> str:
    """The queue a worker of DOCCHAT_WORKER_QUEUES polls first: the embedding queue for an
    embedding-only worker, the workflows' queue otherwise."""
    if worker_roles(settings.worker_queues) == {"embedding"} and settings.embedding_task_queue:
        return settings.embedding_task_queue
    return settings.temporal_task_queue


def names_host(identity: str, hostname: str) -> bool:
    return identity.rsplit("@", 1)[-1] == hostname


async def is_polling(settings: Settings, hostname: str) -> bool:
    client = await connect_temporal(settings)  # the worker's own connection settings
    identities = await poller_identities(client, served_queue(settings))
    return any(names_host(identity, hostname) for identity in identities)


def main() -> int:
    hostname = socket.gethostname()
    try:
        healthy = asyncio.run(asyncio.wait_for(is_polling(Settings(), hostname), TIMEOUT_SECONDS))
    except Exception as exc:  # any failure to ask Temporal is an unhealthy answer
        print(f"unhealthy: cannot query Temporal: {exc!r}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"unhealthy: no poller from {hostname} on the task queue", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
