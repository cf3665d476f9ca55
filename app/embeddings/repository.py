"""SQL for the embedding space recorded by the first migration."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import EmbeddingSpace


class EmbeddingSpaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self) -> EmbeddingSpace | None:
        return await self.session.scalar(select(EmbeddingSpace))
