"""Dependencies as aliases, so routes read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from api.services import Services
from core.chat.service import ChatService
from core.ingestion import IngestionService
from core.settings import Settings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_ingestion(services: Annotated[Services, Depends(get_services)]) -> IngestionService:
    return services.ingestion


def get_settings_dep(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.resources.settings


def get_chat(connection: HTTPConnection) -> ChatService:
    # HTTPConnection, not Request: WebSocket routes depend on this too.
    services: Services = connection.app.state.services
    return services.chat


def get_principal() -> str:
    # Single-user local mode: every resource belongs to the local principal.
    return "local"


ServicesDep = Annotated[Services, Depends(get_services)]
IngestionDep = Annotated[IngestionService, Depends(get_ingestion)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PrincipalDep = Annotated[str, Depends(get_principal)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
