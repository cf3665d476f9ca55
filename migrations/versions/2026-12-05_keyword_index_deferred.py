"""A collection's first chunks get their BM25 postings after the upload answers.

Why (issue 17, the bulk path): the BM25 trigger was 0.7 s of the 1.8 s that
the first upload of 2,730 chunks at 1,536 dimensions took to answer
(benchmark 1b), and the one part of a collection's first fill that neither
the upload's answer nor its HNSW build could skip. Its HNSW index is already
built after the answer (app/document/index_builds.py); the postings now are
too, by their own transaction, beside the HNSW build on the other core.

What this migration does:
- `keyword_collections.deferred`: the collection's keyword index is not
  built yet. A collection's first writer (the one that finds no HNSW index,
  app/document/partitions.py) sets it while the collection has no indexed
  chunks. Meanwhile the triggers leave that collection's chunks alone, and
  a keyword search scores its chunks from their `text_search` directly
  (app/search/bm25.py): the same BM25, read from the chunks instead of the
  postings.
- `keyword_index_build(collection)`: the collection's statistics, words and
  postings from every chunk it holds, in one statement per table, and the
  flag cleared; false if it was not deferred (or the collection is gone).
  It locks the collection's row first (FOR KEY SHARE), as writers do, so a
  delete of the collection waits for it rather than deadlocking with it.
- The three trigger functions again, as in 0007 and 0013 but for the flag.

Who waits for whom: every trigger first updates its collections' statistics
rows, and the build first clears the flag on that row, so a writer and the
build of one collection run one after the other. Whichever goes second reads
what the first committed: a writer after the build finds the flag cleared and
indexes its own chunks; a build after a writer reads that writer's chunks.

Revision ID: 0015_keyword_index_deferred
Revises: 0014_chunks_graph_pending
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_keyword_index_deferred"
down_revision: str | None = "0014_chunks_graph_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each chunk's length in words, as `l.length` (0007).
CHUNK_LENGTH = """    CROSS JOIN LATERAL (
        SELECT coalesce(sum(greatest(cardinality(positions), 1)), 0)::integer AS length
        FROM unnest(c.text_search)
    ) l
"""

# {chunks}: the chunk rows written. {indexed}: those of them whose collection's index is
# kept now ({chunks} itself before this migration). {counted}: how many of a statement's
# chunks the statistics row counts.
ADD_CHUNKS = """
INSERT INTO keyword_collections AS k (collection_id, chunk_count)
SELECT collection_id, count(*) FROM {chunks} GROUP BY collection_id ORDER BY collection_id
ON CONFLICT (collection_id) DO UPDATE SET chunk_count = k.chunk_count + {counted};

WITH words AS MATERIALIZED (
    SELECT c.id, c.collection_id, w.lexeme,
           greatest(cardinality(w.positions), 1) AS frequency, l.length
    FROM {indexed} c
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

# {removed_chunks}, {removed_length}: what the statistics row loses for a collection.
REMOVE_CHUNKS = """
UPDATE keyword_collections k
SET chunk_count = k.chunk_count - {removed_chunks},
    total_length = k.total_length - {removed_length}
FROM (
    SELECT c.collection_id, count(*) AS chunks, sum(l.length) AS length
    FROM {chunks} c
{length}    GROUP BY c.collection_id
) removed
WHERE k.collection_id = removed.collection_id;

DELETE FROM keyword_postings WHERE chunk_id IN (SELECT id FROM {chunks});

WITH removed AS MATERIALIZED (
    SELECT c.collection_id, w.lexeme, count(*) AS chunks
    FROM {indexed} c CROSS JOIN LATERAL unnest(c.text_search) w
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
COLLECTION_CHUNKS = "(SELECT * FROM chunks WHERE collection_id = target)"

# Statements after the first of each script read the flag as the first left it: under
# its row lock, in a snapshot of their own (PL/pgSQL takes one per statement).
DEFERRED = {
    "counted": "CASE WHEN k.deferred THEN 0 ELSE excluded.chunk_count END",
    "removed_chunks": "CASE WHEN k.deferred THEN 0 ELSE removed.chunks END",
    "removed_length": "CASE WHEN k.deferred THEN 0 ELSE removed.length END",
}
ALWAYS = {
    "counted": "excluded.chunk_count",
    "removed_chunks": "removed.chunks",
    "removed_length": "removed.length",
}
# 0013's settings of the functions that add words.
ADDING = "SET enable_mergejoin = off SET work_mem = '32MB'"


# Those of {chunks} whose collection's index is not deferred. NOT EXISTS, not a join: a
# collection's delete may cascade to its statistics row before its chunks, whose words
# must still go.
KEPT = (
    "(SELECT x.* FROM {chunks} x WHERE NOT EXISTS (SELECT 1 FROM keyword_collections kc "
    "WHERE kc.collection_id = x.collection_id AND kc.deferred))"
)


def _add(chunks: str, deferred: bool) -> str:
    values = DEFERRED if deferred else ALWAYS
    indexed = KEPT.format(chunks=chunks) if deferred else chunks
    return ADD_CHUNKS.format(chunks=chunks, indexed=indexed, length=CHUNK_LENGTH, **values)


def _remove(chunks: str, deferred: bool) -> str:
    values = DEFERRED if deferred else ALWAYS
    indexed = KEPT.format(chunks=chunks) if deferred else chunks
    return REMOVE_CHUNKS.format(chunks=chunks, indexed=indexed, length=CHUNK_LENGTH, **values)


def _trigger_function(name: str, body: str, settings: str = "") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {settings} "
        f"AS $body$\nBEGIN\n{body}\nRETURN NULL;\nEND\n$body$"
    )


def _trigger_functions(deferred: bool) -> list[str]:
    return [
        _trigger_function("keyword_index_add", _add("new_chunks", deferred), ADDING),
        _trigger_function("keyword_index_remove", _remove("old_chunks", deferred)),
        _trigger_function(
            "keyword_index_change",
            _remove(CHANGED_OLD, deferred) + _add(CHANGED_NEW, deferred),
            ADDING,
        ),
    ]


BUILD = """
CREATE FUNCTION keyword_index_build(target text) RETURNS boolean LANGUAGE plpgsql {settings}
AS $body$
BEGIN
-- As every writer of a collection's chunks does first: a DELETE of the collection waits
-- for the build, instead of taking the collection's row while the build holds its
-- statistics row and waits for it (updating that row twice checks its foreign key).
PERFORM 1 FROM collections WHERE id = target FOR KEY SHARE;
IF NOT FOUND THEN
    RETURN false;
END IF;
UPDATE keyword_collections SET deferred = false WHERE collection_id = target AND deferred;
IF NOT FOUND THEN
    RETURN false;
END IF;
{add}
RETURN true;
END
$body$
"""


def upgrade() -> None:
    op.add_column(
        "keyword_collections",
        sa.Column(
            "deferred",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="Whether the collection's keyword index waits for keyword_index_build: "
            "true for a moment after its first chunks are written.",
        ),
    )
    for statement in _trigger_functions(deferred=True):
        op.execute(statement)
    op.execute(BUILD.format(settings=ADDING, add=_add(COLLECTION_CHUNKS, deferred=False)))
    op.execute(
        "COMMENT ON FUNCTION keyword_index_build(text) IS 'Build the deferred keyword index "
        "of a collection from its chunks; false if it was not deferred.'"
    )


def downgrade() -> None:
    op.execute(
        "SELECT keyword_index_build(collection_id) FROM keyword_collections "
        "WHERE deferred ORDER BY collection_id"
    )
    op.execute("DROP FUNCTION keyword_index_build(text)")
    for statement in _trigger_functions(deferred=False):
        op.execute(statement)
    op.drop_column("keyword_collections", "deferred")
