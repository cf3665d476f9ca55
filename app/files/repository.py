"""SQL for what the files domain owns: stored files, their bytes, and file batches."""

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, update

from app.db.models import FileBatch, FileBatchFile, FilePart, StoredFile
from app.db.repository import Cursor, Page, RepositoryBase, keyset_page, read_parts, store_parts


class FileRepository(RepositoryBase[StoredFile]):
    model = StoredFile

    async def store_bytes(self, file_id: str, path: Path) -> None:
        await store_parts(self.session, "file_parts", "file_id", file_id, path)

    def parts(self, file_id: str) -> AsyncIterator[bytes]:
        return read_parts(self.session, FilePart.file_id, FilePart.data, FilePart.part, file_id)

    async def list_page(self, purpose: str | None, cursor: Cursor) -> Page[StoredFile]:
        statement = select(StoredFile)
        if purpose is not None:
            statement = statement.where(StoredFile.purpose == purpose)
        return await keyset_page(
            self.session, statement, (StoredFile.created_at, StoredFile.id), cursor, _anchor
        )


def _anchor(file_id: str) -> Select[*tuple[Any, ...]]:
    return select(StoredFile.created_at, StoredFile.id).where(StoredFile.id == file_id)


class FileBatchRepository(RepositoryBase[FileBatch]):
    model = FileBatch

    async def create_with_files(
        self, batch_id: str, collection_id: str, file_ids: Sequence[str]
    ) -> FileBatch:
        batch = await self.create(FileBatch(id=batch_id, collection_id=collection_id))
        self.session.add_all(FileBatchFile(batch_id=batch_id, file_id=f) for f in file_ids)
        await self.session.flush()
        return batch

    async def get_in_collection(self, collection_id: str, batch_id: str) -> FileBatch | None:
        return await self.session.scalar(
            select(FileBatch).where(
                FileBatch.id == batch_id, FileBatch.collection_id == collection_id
            )
        )

    async def files_of(self, batch_id: str) -> list[FileBatchFile]:
        rows = await self.session.scalars(
            select(FileBatchFile).where(FileBatchFile.batch_id == batch_id)
        )
        return list(rows)

    async def mark_cancelled(self, batch_id: str, file_ids: Sequence[str]) -> None:
        await self.session.execute(
            update(FileBatchFile)
            .where(FileBatchFile.batch_id == batch_id, FileBatchFile.file_id.in_(file_ids))
            .values(cancelled=True)
        )
        await self.session.execute(
            update(FileBatch).where(FileBatch.id == batch_id).values(cancelled_at=func.now())
        )
