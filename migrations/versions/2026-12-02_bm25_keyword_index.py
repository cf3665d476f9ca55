"""A BM25 keyword index per collection, kept by triggers in the chunks' own transactions.

`ts_rank` has no inverse document frequency, and a GIN index finds the rows
that share a word with the question but cannot rank them: keyword search
ranked every matching chunk (0.89 s at 100,000 chunks, benchmark 4). These
tables hold what BM25 needs, per collection, so one collection's documents
never change another's scores:

- `keyword_collections`: chunk count and total length (in words) of each
  collection, for the average chunk length;
- `keyword_terms`: each word (a lexeme of `chunks.text_search`) of a
  collection with its document frequency (how many chunks hold it);
- `keyword_postings`: one row per (chunk, word) with the word's frequency in
  the chunk, the chunk's length, and `impact`, the word's BM25 weight in the
  chunk without its IDF (k1 1.2, b 0.75, the collection's average length when
  the row was written). An index on (term_id, impact DESC) serves each word's
  best postings first, so a search reads a bounded number of rows per word
  however common the word is; the primary key (chunk_id, term_id), covering
  the frequency and length, scores a candidate exactly.

Postings have no foreign keys: a cascade would cost an index probe per row on
every write. The triggers remove a chunk's postings by its id, and a test of
invariants checks that none is ever left behind.

Statement-level triggers with transition tables keep the index for every way
chunks are written (COPY, INSERT ... SELECT from the cache, SQL by hand). Each
locks its collections' `keyword_collections` rows first, in collection order,
so writers of one collection update its words one after another and never
deadlock; the chunks themselves (and their HNSW entries) are still written in
parallel.

Revision ID: 0007_bm25_keyword_index
Revises: 0006_job_listing
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_bm25_keyword_index"
down_revision: str | None = "0006_job_listing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = """
CREATE TABLE keyword_collections (
    collection_id text CONSTRAINT pk_keyword_collections PRIMARY KEY
        CONSTRAINT fk_keyword_collections_collection_id_collections
        REFERENCES collections (id) ON DELETE CASCADE,
    chunk_count bigint NOT NULL DEFAULT 0
        CONSTRAINT ck_keyword_collections_chunk_count CHECK (chunk_count >= 0),
    total_length bigint NOT NULL DEFAULT 0
        CONSTRAINT ck_keyword_collections_total_length CHECK (total_length >= 0)
);
COMMENT ON TABLE keyword_collections IS
    'BM25 statistics of a collection: its chunks and their total length in words.';
CREATE TABLE keyword_terms (
    id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_keyword_terms PRIMARY KEY,
    collection_id text NOT NULL CONSTRAINT fk_keyword_terms_collection_id_collections
        REFERENCES collections (id) ON DELETE CASCADE,
    term text NOT NULL,
    document_frequency integer NOT NULL
        CONSTRAINT ck_keyword_terms_document_frequency CHECK (document_frequency > 0),
    CONSTRAINT uq_keyword_terms_collection_id_term UNIQUE (collection_id, term)
);
COMMENT ON TABLE keyword_terms IS
    'A word (lexeme of chunks.text_search) of a collection and how many chunks hold it.';
CREATE TABLE keyword_postings (
    chunk_id bigint NOT NULL,
    term_id bigint NOT NULL,
    term_frequency integer NOT NULL,
    chunk_length integer NOT NULL,
    impact real NOT NULL,
    CONSTRAINT pk_keyword_postings PRIMARY KEY (chunk_id, term_id)
        INCLUDE (term_frequency, chunk_length)
);
COMMENT ON TABLE keyword_postings IS
    'A word in a chunk: its frequency, the chunk''s length and its BM25 weight without IDF.';
CREATE INDEX ix_keyword_postings_term_id_impact
    ON keyword_postings (term_id, impact DESC) INCLUDE (chunk_id);
CREATE FUNCTION keyword_length(words tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT coalesce(sum(greatest(cardinality(positions), 1)), 0)::integer
            FROM unnest(words));
"""

# Each chunk's length in words, as `l.length`: inline, not keyword_length(), which as a
# SQL function called once per chunk cost 0.3 ms a call (2.9 s of 4.3 s at 10,000 chunks).
CHUNK_LENGTH = """    CROSS JOIN LATERAL (
        SELECT coalesce(sum(greatest(cardinality(positions), 1)), 0)::integer AS length
        FROM unnest(c.text_search)
    ) l
"""

# {chunks} is a relation of chunk rows: the trigger's transition table, or the
# chunks table itself when the index is built for existing rows.
ADD_CHUNKS = """
INSERT INTO keyword_collections AS k (collection_id, chunk_count)
SELECT collection_id, count(*) FROM {chunks} GROUP BY collection_id ORDER BY collection_id
ON CONFLICT (collection_id) DO UPDATE SET chunk_count = k.chunk_count + excluded.chunk_count;

WITH words AS MATERIALIZED (
    SELECT c.id, c.collection_id, w.lexeme,
           greatest(cardinality(w.positions), 1) AS frequency, l.length
    FROM {chunks} c
{length}    CROSS JOIN LATERAL unnest(c.text_search) w
),
lengths AS (
    UPDATE keyword_collections k SET total_length = k.total_length + added.length
    FROM (SELECT collection_id, sum(frequency) AS length FROM words GROUP BY collection_id) added
    WHERE k.collection_id = added.collection_id
    RETURNING k.collection_id,
              k.total_length::float8 / greatest(k.chunk_count, 1) AS average_length
),
terms AS (
    INSERT INTO keyword_terms AS t (collection_id, term, document_frequency)
    SELECT collection_id, lexeme, count(*) FROM words
    GROUP BY collection_id, lexeme ORDER BY collection_id, lexeme
    ON CONFLICT (collection_id, term)
        DO UPDATE SET document_frequency = t.document_frequency + excluded.document_frequency
    RETURNING t.id, t.collection_id, t.term
)
INSERT INTO keyword_postings (chunk_id, term_id, term_frequency, chunk_length, impact)
SELECT w.id, t.id, w.frequency, w.length,
       w.frequency * 2.2
           / (w.frequency + 1.2 * (0.25 + 0.75 * w.length / greatest(l.average_length, 1)))
FROM words w
JOIN terms t ON t.collection_id = w.collection_id AND t.term = w.lexeme
JOIN lengths l ON l.collection_id = w.collection_id;
"""

REMOVE_CHUNKS = """
UPDATE keyword_collections k
SET chunk_count = k.chunk_count - removed.chunks, total_length = k.total_length - removed.length
FROM (
    SELECT c.collection_id, count(*) AS chunks, sum(l.length) AS length
    FROM {chunks} c
{length}    GROUP BY c.collection_id
) removed
WHERE k.collection_id = removed.collection_id;

DELETE FROM keyword_postings WHERE chunk_id IN (SELECT id FROM {chunks});

WITH removed AS MATERIALIZED (
    SELECT c.collection_id, w.lexeme, count(*) AS chunks
    FROM {chunks} c CROSS JOIN LATERAL unnest(c.text_search) w
    GROUP BY c.collection_id, w.lexeme
),
gone AS (
    DELETE FROM keyword_terms t USING removed r
    WHERE t.collection_id = r.collection_id AND t.term = r.lexeme
      AND t.document_frequency <= r.chunks
)
UPDATE keyword_terms t SET document_frequency = t.document_frequency - r.chunks
FROM removed r
WHERE t.collection_id = r.collection_id AND t.term = r.lexeme
  AND t.document_frequency > r.chunks;
"""

# The rows whose words changed, for an UPDATE (ragstore itself only updates metadata).
CHANGED_OLD = (
    "(SELECT o.* FROM old_chunks o JOIN new_chunks n ON n.id = o.id "
    "WHERE n.text_search IS DISTINCT FROM o.text_search OR n.collection_id <> o.collection_id)"
)
CHANGED_NEW = CHANGED_OLD.replace("SELECT o.*", "SELECT n.*")


def _function(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
        f"BEGIN\n{body}\nRETURN NULL;\nEND\n$body$"
    )


def _statements(script: str) -> list[str]:
    """One statement per execute: asyncpg runs a single statement with parameters."""
    return [part.strip() for part in script.split(";\n") if part.strip()]


def upgrade() -> None:
    for statement in _statements(TABLES):
        op.execute(statement)
    # Lexemes are counted once per (collection, chunk) while the lock is held, so the
    # index is built from the existing chunks here, before the triggers exist.
    for statement in _statements(ADD_CHUNKS.format(chunks="chunks", length=CHUNK_LENGTH)):
        op.execute(statement)
    op.execute(
        _function("keyword_index_add", ADD_CHUNKS.format(chunks="new_chunks", length=CHUNK_LENGTH))
    )
    op.execute(
        _function(
            "keyword_index_remove", REMOVE_CHUNKS.format(chunks="old_chunks", length=CHUNK_LENGTH)
        )
    )
    op.execute(
        _function(
            "keyword_index_change",
            REMOVE_CHUNKS.format(chunks=CHANGED_OLD, length=CHUNK_LENGTH)
            + ADD_CHUNKS.format(chunks=CHANGED_NEW, length=CHUNK_LENGTH),
        )
    )
    op.execute(
        "CREATE TRIGGER keyword_index_add AFTER INSERT ON chunks "
        "REFERENCING NEW TABLE AS new_chunks FOR EACH STATEMENT "
        "EXECUTE FUNCTION keyword_index_add()"
    )
    op.execute(
        "CREATE TRIGGER keyword_index_remove AFTER DELETE ON chunks "
        "REFERENCING OLD TABLE AS old_chunks FOR EACH STATEMENT "
        "EXECUTE FUNCTION keyword_index_remove()"
    )
    op.execute(
        "CREATE TRIGGER keyword_index_change AFTER UPDATE ON chunks "
        "REFERENCING OLD TABLE AS old_chunks NEW TABLE AS new_chunks FOR EACH STATEMENT "
        "EXECUTE FUNCTION keyword_index_change()"
    )
    op.execute("ANALYZE keyword_collections, keyword_terms, keyword_postings")


def downgrade() -> None:
    for trigger in ("keyword_index_change", "keyword_index_remove", "keyword_index_add"):
        op.execute(f"DROP TRIGGER {trigger} ON chunks")
        op.execute(f"DROP FUNCTION {trigger}()")
    op.execute("DROP FUNCTION keyword_length(tsvector)")
    for table in ("keyword_postings", "keyword_terms", "keyword_collections"):
        op.drop_table(table)
