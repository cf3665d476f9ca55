"""The key of the processed-document cache."""

import hashlib

# Bump when parsing or chunking changes what a document turns into, so stale
# cache entries stop matching instead of serving outdated chunks.
# 2: text is NFKC-normalised (ligatures and other compatibility characters folded).
# 3: DOCX headers, footers and nested tables; `sections` of chunks spanning headings.
PROCESSING_VERSION = 3


def cache_key(
    content_sha256: str, chunk_size: int, chunk_overlap: int, embedding_model: str
) -> str:
    """Same bytes and same parameters give the same key, whatever the file is called."""
    parts = f"v{PROCESSING_VERSION}|{content_sha256}|{chunk_size}|{chunk_overlap}|{embedding_model}"
    return hashlib.sha256(parts.encode()).hexdigest()
