"""A document's metadata (OpenAI: a file's attributes).

It is copied into every chunk of the document, beside the keys ragstore writes
itself, so search filters read one row and need no join. Changing it rewrites
the chunks' copy in the same transaction and embeds nothing.
"""

import json
from typing import Any

from app.core.errors import UnprocessableContent
from app.db.types import check_metadata

# The keys ragstore sets in every chunk's metadata: which file, when, and where in it
# the text came from. A user's metadata may not use them (the chunk's value would hide
# the user's, and a change could not tell the two apart).
CHUNK_KEYS = frozenset(
    {
        "filename",
        "upload_time",
        "chunk_index",
        "page",
        "page_end",
        "section",
        "sections",
        "sheet",
        "rows",
    }
)


def metadata_too_large(max_bytes: int) -> str:
    return f"metadata is larger than {max_bytes / 1024:g} KB of JSON"


def check_document_metadata(metadata: dict[str, Any], max_bytes: int) -> None:
    """Refuse metadata that jsonb cannot store, that is too large, or that uses a key
    ragstore sets in every chunk."""
    check_metadata(metadata)
    if len(json.dumps(metadata)) > max_bytes:
        raise UnprocessableContent(metadata_too_large(max_bytes))
    reserved = sorted(CHUNK_KEYS & metadata.keys())
    if reserved:
        raise UnprocessableContent(
            f"metadata key{'s' if len(reserved) > 1 else ''} {', '.join(map(repr, reserved))} "
            f"{'are' if len(reserved) > 1 else 'is'} reserved: ragstore sets "
            f"{'them' if len(reserved) > 1 else 'it'} on every chunk "
            f"({', '.join(sorted(CHUNK_KEYS))})"
        )


def copied_bytes(metadata: dict[str, Any]) -> int:
    """How much of the metadata each chunk holds a copy of."""
    return len(json.dumps(metadata)) if metadata else 0


def check_copied_metadata(metadata: dict[str, Any], chunk_count: int, max_copied_mb: float) -> None:
    """Refuse metadata whose copies in `chunk_count` chunks would be over the bound."""
    if copied_bytes(metadata) * chunk_count > int(max_copied_mb * 1024 * 1024):
        raise UnprocessableContent(
            f"metadata of {copied_bytes(metadata)} bytes, copied into each of the document's "
            f"{chunk_count} chunks, is over RAGSTORE_MAX_COPIED_METADATA_MB ({max_copied_mb:g} MB)"
        )
