"""SQL for what the files domain owns: stored files and their bytes."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select

from app.db.models import FilePart, StoredFile
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
