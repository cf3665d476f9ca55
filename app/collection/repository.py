from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert

from app.db.models import Collection
from app.db.repository import Cursor, Page, RepositoryBase, keyset_page


class CollectionRepository(RepositoryBase[Collection]):
    model = Collection

    async def create_if_absent(self, collection_id: str, name: str) -> bool:
        """Create the collection unless it exists; True when this call created it."""
        created = await self.session.execute(
            insert(Collection)
            .values(id=collection_id, name=name)
            .on_conflict_do_nothing(index_elements=[Collection.id])
            .returning(Collection.id)
        )
        return created.first() is not None

    async def lock_for_share(self, collection_id: str) -> Collection | None:
        """The collection, held against deletion until the transaction ends (FOR KEY SHARE:
        writers of its documents take this first, so a DELETE waits instead of deadlocking)."""
        return await self.session.scalar(
            select(Collection)
            .where(Collection.id == collection_id)
            .with_for_update(read=True, key_share=True)
            .execution_options(populate_existing=True)
        )

    async def lock_for_update(self, collection_id: str) -> Collection | None:
        return await self.session.scalar(
            select(Collection)
            .where(Collection.id == collection_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def lock_for_change(self, collection_id: str) -> Collection | None:
        """The collection, locked to change its name or metadata (FOR NO KEY UPDATE: the
        uploads that hold it FOR KEY SHARE go on; a DELETE waits)."""
        return await self.session.scalar(
            select(Collection)
            .where(Collection.id == collection_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )

    async def create_unless_taken(
        self, collection_id: str, name: str, metadata: dict[str, object]
    ) -> Collection | None:
        """The new collection, or None if the id is taken (safe under concurrent calls)."""
        created = await self.session.scalars(
            insert(Collection)
            .values(id=collection_id, name=name, metadata_=metadata)
            .on_conflict_do_nothing(index_elements=[Collection.id])
            .returning(Collection)
        )
        return created.one_or_none()

    async def list_page(self, limit: int, offset: int) -> tuple[Sequence[Collection], int]:
        rows = await self.session.scalars(
            select(Collection)
            .order_by(Collection.created_at, Collection.id)
            .limit(limit)
            .offset(offset)
        )
        total = await self.session.scalar(select(func.count()).select_from(Collection))
        return rows.all(), total or 0

    async def list_cursor(self, cursor: Cursor) -> Page[Collection]:
        return await keyset_page(
            self.session,
            select(Collection),
            (Collection.created_at, Collection.id),
            cursor,
            _anchor,
        )


def _anchor(collection_id: str) -> Select[*tuple[Any, ...]]:
    return select(Collection.created_at, Collection.id).where(Collection.id == collection_id)
