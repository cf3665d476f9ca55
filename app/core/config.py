"""Every setting ragstore reads, in one validated object."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Embedding models whose output size is known; any other model needs
# RAGSTORE_EMBEDDING_DIMENSIONS.
KNOWN_EMBEDDING_DIMENSIONS: dict[str, int] = {
    "all-MiniLM-L6-v2": 384,
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_EMBEDDING_MODEL: dict[str, str] = {
    "local": "all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
}
# From this many dimensions the HNSW index holds binary-quantized vectors and searches
# re-rank its candidates by the full ones (app/db/types.py; benchmarks 2b and 4c: 3.6x
# cheaper to keep at 1,536-d, recall@10 0.982 vs 0.958). Below it, one bit per dimension
# keeps too little (384-d: recall@10 0.886 vs 0.958, and only 1.7x cheaper to keep).
QUANTIZED_INDEX_MIN_DIMENSIONS = 1024
# pgvector's `vector` type holds at most 16,000 dimensions.
MAX_INDEXED_DIMENSIONS = 16_000
# About 8k tokens, the most an OpenAI embedding model reads of one input.
MAX_CHUNK_SIZE = 24_000

# The one RAG instruction, settable with RAGSTORE_RAG_SYSTEM_PROMPT.
DEFAULT_RAG_SYSTEM_PROMPT = (
    "You answer questions using only the context below, which comes from the user's "
    "documents. Each context block starts with [Source: filename]. Cite the sources you "
    "use as [Source: filename] after the sentences that rely on them. If the context does "
    "not contain the answer, say that the documents do not cover it instead of guessing."
)


class Settings(BaseSettings):
    """Read from the environment (and `.env`), validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="RAGSTORE_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="PostgreSQL URL; when unset an embedded PostgreSQL runs in data_dir.",
    )
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Embedded database location: the user data directory (the same from any "
        "working directory) unless set.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys; when set, every route but health needs "
        "`Authorization: Bearer <key>`. Empty: no authentication (as the original app).",
    )
    default_chat_model: str = "gpt-4.1-mini"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    upstream_timeout_seconds: float = Field(default=60.0, gt=0)
    upstream_max_retries: int = Field(default=2, ge=0, le=10)
    migrate_on_start: bool = True
    db_pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections for writes (and as many overflow)."
    )
    db_read_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Connections of the read pool (searches, listings), kept apart so that "
        "writes cannot starve reads (and as many overflow).",
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for a free connection before it is answered "
        "503 with Retry-After.",
    )

    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str = ""
    embedding_dimensions: int = Field(default=0, ge=0)
    text_search_config: str = Field(default="english", pattern=r"^[a-z_]+$")
    embedding_batch_size: int = Field(
        default=2048, ge=1, le=2048, description="Most inputs in one embeddings request."
    )
    embedding_batch_tokens: int = Field(
        default=250_000,
        ge=1000,
        description="Most (estimated) tokens in one request; OpenAI accepts 300k.",
    )
    embedding_concurrency: int = Field(default=4, ge=1, le=64)
    embedding_max_attempts: int = Field(default=5, ge=1, le=20)
    embedding_retry_max_wait_seconds: float = Field(default=30.0, gt=0)

    chunk_size: int = Field(default=500, gt=0, le=MAX_CHUNK_SIZE)
    chunk_overlap: int = Field(default=50, ge=0)
    min_chunk_size: int = Field(
        default=100,
        ge=1,
        description="Smallest chunk_size an upload may ask for: below it, each chunk's row "
        "(vector, metadata, index entries) outweighs the text it holds many times over.",
    )
    max_chunks_per_document: int = Field(
        default=250_000, ge=1, description="Most chunks one document may make."
    )
    max_copied_metadata_mb: float = Field(
        default=64.0,
        gt=0,
        description="Most upload metadata one document may copy into its chunks "
        "(its size times the number of chunks).",
    )
    max_upload_mb: float = Field(default=50.0, gt=0)
    request_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request whose headers are not all in this long after its first byte "
        "is answered 408 (a slow-loris client).",
    )
    request_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request whose body sends nothing for this long is answered 408.",
    )
    max_unpacked_mb: float = Field(
        default=200.0, gt=0, description="Most a DOCX or XLSX may unpack to (ZIP bombs)."
    )
    max_pdf_pages: int = Field(default=5000, ge=1, description="Most pages of one PDF.")
    max_csv_columns: int = Field(default=10_000, ge=1, description="Most columns of one CSV.")
    max_metadata_kb: float = Field(
        default=16.0, gt=0, description="Largest `metadata` JSON of one upload."
    )
    cache_max_entries: int = Field(default=1000, ge=0)
    cache_max_age_days: float = Field(default=30.0, gt=0)

    search_max_k: int = Field(default=100, ge=1, le=1000)
    search_candidates: int = Field(
        default=60, ge=1, le=1000, description="Rows each list contributes to hybrid fusion."
    )
    rrf_k: int = Field(
        default=20, ge=1, description="Reciprocal rank fusion constant; see benchmark 7."
    )
    rrf_keyword_weight: float = Field(
        default=0.6,
        ge=0,
        le=10,
        description="Weight of the keyword list in hybrid fusion (vector: 1); see benchmark 7.",
    )
    bm25_k1: float = Field(
        default=1.2, ge=0, le=10, description="BM25 term-frequency saturation (Lucene: 1.2)."
    )
    bm25_b: float = Field(
        default=0.75, ge=0, le=1, description="BM25 length normalisation (Lucene: 0.75)."
    )
    bm25_depth: int = Field(
        default=300,
        ge=1,
        le=100_000,
        description="Best postings read per query word before exact scoring; see benchmark 4.",
    )
    bm25_exact_postings: int = Field(
        default=25_000,
        ge=0,
        description="A question whose words have at most this many postings in the "
        "collection is scored exhaustively (exact BM25); see benchmark 4.",
    )
    bm25_exact: bool = Field(
        default=False,
        description="Score every chunk holding a query word (exhaustive BM25), not the best "
        "postings of each word.",
    )
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    vector_index_deferred_max_chunks: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000,
        description="How many of a collection's chunks may wait outside its HNSW graph, "
        "found meanwhile by an exact scan: a new collection's first chunks, up to this many, "
        "answer before its index is built (right after), and later writes answer before "
        "their chunks join the graph while fewer than this many wait. 0: every write keeps "
        "the graph up to date before it answers.",
    )
    bulk_load_min_chunks: int = Field(
        default=10_001,
        ge=0,
        le=10_000_000,
        description="An upload of at least this many chunks into a collection with none yet "
        "is a bulk load: its chunks are written and every index built over them on several "
        "connections before its commit, which publishes them at once, indexed. By default "
        "the first fills that would otherwise build their index before they answer (more "
        "than vector_index_deferred_max_chunks); smaller ones answer first. 0: never.",
    )
    index_build_memory_mb: int = Field(
        default=512,
        ge=64,
        le=65_536,
        description="PostgreSQL's maintenance_work_mem while a collection's HNSW index is "
        "built over its first chunks: a graph that fits is built several times faster.",
    )
    database_cores: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="The cores of PostgreSQL's machine. A bulk load builds its HNSW index "
        "beside its BM25 postings, each on a connection of its own: a binary-quantized HNSW "
        "build gets PostgreSQL's parallel workers only for the cores beyond those two. By "
        "default this machine's cores (those this process may run on): right for the "
        "embedded database and for one on the same host.",
    )
    vector_rerank_candidates: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="With the binary-quantized index (1,024 dimensions or more): how many "
        "of its best candidates a search re-ranks by their full vectors.",
    )
    query_cache_size: int = Field(default=1024, ge=0)
    rag_top_k: int = Field(default=4, ge=1, le=50)
    rag_min_similarity: float = Field(
        default=0.2,
        ge=-1,
        le=1,
        description="A retrieved chunk counts as relevant for RAG from this cosine similarity up.",
    )
    rag_system_prompt: str = Field(default=DEFAULT_RAG_SYSTEM_PROMPT, min_length=1)
    chat_context_tokens: int = Field(
        default=32_000,
        ge=1_000,
        description="The chat model's context, in tokens: prompts (instructions, history, "
        "sources, question) are trimmed to fit, leaving chat_answer_tokens for the answer.",
    )
    chat_answer_tokens: int = Field(default=2_000, ge=100)

    worker_in_process: bool = Field(
        default=True, description="The API server also runs a job worker (one-machine setups)."
    )
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    worker_stalled_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A job whose worker sent no heartbeat for this long is given to another.",
    )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_metadata_bytes(self) -> int:
        return int(self.max_metadata_kb * 1024)

    @property
    def database_cpu_count(self) -> int:
        """`database_cores`, or this process's cores if it is not set."""
        return self.database_cores or available_cores()

    def secrets(self) -> list[str]:
        """Every configured secret, for the logging filter to scrub."""
        keys = [self.openai_api_key, *self.api_keys]
        return [key.get_secret_value() for key in keys if key is not None]

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg_driver(cls, value: str | None) -> str | None:
        """Accept the plain URLs operators copy from their provider."""
        if value is None:
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"RAGSTORE_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                f"RAGSTORE_CHUNK_SIZE ({self.chunk_size})"
            )
        return self

    @model_validator(mode="after")
    def _room_for_the_prompt(self) -> "Settings":
        if self.chat_answer_tokens >= self.chat_context_tokens:
            raise ValueError(
                f"RAGSTORE_CHAT_ANSWER_TOKENS ({self.chat_answer_tokens}) must be smaller than "
                f"RAGSTORE_CHAT_CONTEXT_TOKENS ({self.chat_context_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _resolve_embedding_model(self) -> "Settings":
        if not self.embedding_model:
            self.embedding_model = DEFAULT_EMBEDDING_MODEL[self.embedding_provider]
        known = KNOWN_EMBEDDING_DIMENSIONS.get(self.embedding_model)
        if self.embedding_provider == "local":
            if self.embedding_model != DEFAULT_EMBEDDING_MODEL["local"]:
                raise ValueError(
                    f"RAGSTORE_EMBEDDING_MODEL={self.embedding_model!r} is not a local model "
                    f"ragstore ships; use {DEFAULT_EMBEDDING_MODEL['local']!r}"
                )
            if self.embedding_dimensions not in (0, known):
                raise ValueError(
                    f"{self.embedding_model} always gives {known} dimensions; "
                    "unset RAGSTORE_EMBEDDING_DIMENSIONS"
                )
        if not self.embedding_dimensions:
            if known is None:
                raise ValueError(
                    f"the dimension of embedding model {self.embedding_model!r} is unknown: "
                    "set RAGSTORE_EMBEDDING_DIMENSIONS"
                )
            self.embedding_dimensions = known
        if self.embedding_dimensions > MAX_INDEXED_DIMENSIONS:
            raise ValueError(
                f"{self.embedding_model} gives {self.embedding_dimensions} dimensions but "
                f"pgvector stores at most {MAX_INDEXED_DIMENSIONS}: set "
                f"RAGSTORE_EMBEDDING_DIMENSIONS to {MAX_INDEXED_DIMENSIONS} or fewer (OpenAI "
                "text-embedding-3 models shorten their vectors on request)"
            )
        return self


def available_cores() -> int:
    """The cores this process may run on (all of the machine's where that is not known)."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def environment_variable(field_name: str) -> str:
    """The environment variable that sets a field of Settings."""
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"RAGSTORE_{field_name.upper()}"


def describe_settings_error(error: ValidationError) -> list[str]:
    """One line per bad setting: its environment variable, what is allowed, and what was
    given (never the value of a secret)."""
    lines = []
    for problem in error.errors(include_url=False):
        location = problem["loc"]
        if not location:
            # A check across settings: its message names the variables itself.
            lines.append(f"invalid settings: {problem['msg'].removeprefix('Value error, ')}")
            continue
        name = environment_variable(str(location[0]))
        given = "" if _is_secret(str(location[0])) else f" (got {problem['input']!r})"
        lines.append(f"invalid {name}: {problem['msg']}{given}")
    return lines


def _is_secret(field_name: str) -> bool:
    field = Settings.model_fields.get(field_name)
    return field is None or "SecretStr" in repr(field.annotation)


# Where ragstore kept its embedded database before it used the user data directory.
OLD_DATA_DIR = Path(".ragstore")


def default_data_dir() -> Path:
    """The user data directory (`~/.local/share/ragstore` on Linux), whatever the working
    directory: the same database for the server, the CLI and the Python API."""
    return Path(platformdirs.user_data_dir("ragstore", appauthor=False))


def describe_database(settings: Settings) -> str:
    """Which database the settings point at, for logs and the CLI (no password)."""
    if settings.database_url:
        try:
            return make_url(settings.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "DATABASE_URL (not a URL SQLAlchemy can read)"
    return f"embedded PostgreSQL in {settings.data_dir.expanduser().resolve()}"


def old_data_dir_notice(settings: Settings) -> str | None:
    """A word for users whose data is in `./.ragstore`, the old default, which ragstore no
    longer reads unless told to."""
    if settings.database_url or "data_dir" in settings.model_fields_set:
        return None
    old = OLD_DATA_DIR.resolve()
    if not (old / "pgdata").is_dir() or old == settings.data_dir.resolve():
        return None
    return (
        f"{old} holds a ragstore database from an older version, which kept it in the "
        f"working directory; this one uses {settings.data_dir}. To keep using the old one, "
        f"set RAGSTORE_DATA_DIR={old}"
    )
