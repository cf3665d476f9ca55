"""Typed dependencies, named once and reused by every route."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.database import Database
from app.ingestion.service import IngestionService
from app.llm.client import LLMClients
from app.search.service import SearchService


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


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the route succeeds, rolled back otherwise."""
    async with database.session() as session:
        yield session


def get_ingestion_service(request: Request) -> IngestionService:
    service = request.app.state.ingestion
    assert isinstance(service, IngestionService)
    return service


def get_search_service(request: Request) -> SearchService:
    service = request.app.state.search
    assert isinstance(service, SearchService)
    return service


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SearchDep = Annotated[SearchService, Depends(get_search_service)]
IngestionDep = Annotated[IngestionService, Depends(get_ingestion_service)]
