"""Typed dependencies, named once and reused by every route."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings
from app.db.database import Database
from app.llm.client import LLMClients


def get_settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def get_database(request: Request) -> Database:
    database = request.app.state.database
    assert isinstance(database, Database)
    return database


def get_llm_clients(request: Request) -> LLMClients:
    clients = request.app.state.llm_clients
    assert isinstance(clients, LLMClients)
    return clients


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
LLMClientsDep = Annotated[LLMClients, Depends(get_llm_clients)]
