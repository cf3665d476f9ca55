"""Stored files: uploads kept as they were sent (OpenAI's Files API), from which the
documents of any number of collections are made, each embedded once (the cache)."""

import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.db.models import StoredFile
from app.db.repository import Cursor, Page
from app.files.repository import FileRepository
from app.ingestion.upload import StoredUpload, copy_to_temporary

FILE_ID_PREFIX = "file-"


class FileNotFound(NotFound):
    pass


async def store_file(session: AsyncSession, upload: StoredUpload, purpose: str) -> StoredFile:
    """Keep the upload's bytes as a new file."""
    files = FileRepository(session)
    stored = await files.create(
        StoredFile(
            id=f"{FILE_ID_PREFIX}{uuid.uuid4().hex}",
            filename=upload.filename,
            purpose=purpose,
            size_bytes=upload.size_bytes,
            content_sha256=upload.sha256,
        )
    )
    await files.store_bytes(stored.id, upload.path)
    return stored


async def get_file(session: AsyncSession, file_id: str) -> StoredFile:
    stored = await FileRepository(session).get_one_or_none(file_id)
    if stored is None:
        raise FileNotFound(f"no such file: {file_id!r}")
    return stored


async def list_files(
    session: AsyncSession, purpose: str | None, cursor: Cursor
) -> Page[StoredFile]:
    return await FileRepository(session).list_page(purpose, cursor)


async def delete_file(session: AsyncSession, file_id: str) -> None:
    """Delete the file and every document made from it, in every collection (their chunks
    and keyword postings follow by cascade and triggers)."""
    stored = await get_file(session, file_id)
    if not await FileRepository(session).delete(stored):
        raise FileNotFound(f"no such file: {file_id!r}")


def file_content(session: AsyncSession, file_id: str) -> AsyncIterator[bytes]:
    """The file's bytes as sent, 1 MiB at a time."""
    return FileRepository(session).parts(file_id)


async def copy_to_disk(session: AsyncSession, stored: StoredFile) -> StoredUpload:
    """The file's bytes in a temporary file, as an upload the ingestion can process; the
    caller deletes it."""
    path = await copy_to_temporary(file_content(session, stored.id))
    return StoredUpload(
        path, stored.filename, stored.size_bytes, stored.content_sha256, file_id=stored.id
    )
