import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from app.db.models import Document
from app.db.repository import RepositoryBase


class DocumentRepository(RepositoryBase[Document]):
    model = Document

    async def get_in_collection(
        self, collection_id: str, document_id: uuid.UUID
    ) -> Document | None:
        return await self.session.scalar(
            select(Document).where(
                Document.collection_id == collection_id, Document.id == document_id
            )
        )

    async def get_by_filename(self, collection_id: str, filename: str) -> Document | None:
        return await self.session.scalar(
            select(Document).where(
                Document.collection_id == collection_id, Document.filename == filename
            )
        )

    async def list_page(
        self, collection_id: str, limit: int, offset: int
    ) -> tuple[Sequence[Document], int]:
        rows = await self.session.scalars(
            select(Document)
            .where(Document.collection_id == collection_id)
            .order_by(Document.created_at, Document.id)
            .limit(limit)
            .offset(offset)
        )
        total = await self.count_in_collection(collection_id)
        return rows.all(), total

    async def count_in_collection(self, collection_id: str) -> int:
        count = await self.session.scalar(
            select(func.count()).where(Document.collection_id == collection_id)
        )
        return count or 0

    async def count_by_collection(self, collection_ids: Sequence[str]) -> dict[str, int]:
        rows = await self.session.execute(
            select(Document.collection_id, func.count())
            .where(Document.collection_id.in_(collection_ids))
            .group_by(Document.collection_id)
        )
        counts = {collection_id: 0 for collection_id in collection_ids}
        counts.update({collection_id: count for collection_id, count in rows})
        return counts
