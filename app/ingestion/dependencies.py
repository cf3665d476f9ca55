"""The multipart upload form both upload routes take, read into a plain UploadRequest."""

from typing import Annotated

from fastapi import Depends, File, Form, UploadFile

from app.ingestion.upload import UploadRequest, parse_metadata
from app.llm.client import RequestApiKey
from app.web.dependencies import SettingsDep
from app.web.errors import UNREADABLE_BODY, error_responses

# The failures every upload route shares, for their OpenAPI description.
UPLOAD_ERRORS = error_responses(
    {
        400: f"{UNREADABLE_BODY}; or `api_key` with an asynchronous upload",
        401: "No API key, or the provider rejected it",
        413: "The file is over the upload limit",
        415: "The file type is not supported",
        422: "The request does not match the schema, or the file is encrypted, damaged, "
        "empty or has no text, or its name or metadata is refused",
        502: "Embedding failed after retries; the document is marked failed",
    }
)


async def upload_form(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="PDF, DOCX, XLSX, CSV, TXT, Markdown or HTML")],
    api_key: Annotated[
        RequestApiKey | None,
        Form(description="OpenAI key for this upload's embeddings; never stored"),
    ] = None,
    chunk_size: Annotated[
        int | None, Form(description="Characters per chunk (default 500)")
    ] = None,
    chunk_overlap: Annotated[
        int | None, Form(description="Characters of overlap (default 50)")
    ] = None,
    metadata: Annotated[
        str | None, Form(description="A JSON object stored with the document and its chunks")
    ] = None,
) -> UploadRequest:
    return UploadRequest(
        source=file.file,
        filename=file.filename,
        api_key=api_key,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        metadata=parse_metadata(metadata, settings.max_metadata_bytes),
    )


UploadFormDep = Annotated[UploadRequest, Depends(upload_form)]
