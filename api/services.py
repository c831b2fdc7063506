"""What a running API process holds: resources, the Temporal client and the services."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from core.chat.service import ChatService
from core.ingestion.service import IngestionService
from core.runtime import Resources


@dataclass
class Services:
    resources: Resources
    temporal: Client
    ingestion: IngestionService
    chat: ChatService
