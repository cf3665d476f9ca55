"""`keyword_postings` is partitioned by collection: each collection's BM25 postings are a table.

Why (issue 17, the bulk path): a new collection's postings are built after
its first upload answers (0015), one row at a time into the one shared table
and its two B-trees: 1.6-2.0 s for the 268,158 postings of 10,000 chunks,
more than its HNSW build. Written into a table of their own and indexed after
(sorted, as CREATE INDEX builds), the same postings take 0.91-1.09 s
(benchmark 2's rows, 1,536-d). And a collection's search reads only its own
postings.

What this migration does:
- `keyword_postings` gets `collection_id` and is partitioned by it (LIST),
  one partition per collection, `keyword_partition_name(collection_id)`:
  `keyword_postings_` and the same 24 hex digits as its chunks' partition.
- The (term_id, impact DESC) index is partitioned (every partition has it).
  The primary key (chunk_id, term_id) is each partition's own. Both INCLUDE
  `collection_id`: every read of postings names the collection, which
  prunes it to one partition, and an index-only scan checks that condition
  from the index alone (KEY_INCLUDE).
- `keyword_index_build(collection)` (0015) writes a collection's first
  postings into a new table, builds its key and index over them, and then
  attaches it. If the collection has a partition already (a deleted
  collection's of the same id, not yet dropped), it adds to it as before.
- `keyword_postings_partition(collection)` makes an empty partition if it is
  missing. The trigger that adds words calls it for the collections it
  indexes, so chunks written by SQL into a collection that never had a
  deferred first fill still get their postings.
- The trigger that removes words deletes each collection's postings from its
  own partition (one DELETE per collection, so each one is pruned to it).
- Existing postings move into one partition per collection, each indexed
  after its rows; the shared table is then dropped.

Locks: a partition is attached with SHARE UPDATE EXCLUSIVE on
`keyword_postings`, which waits for no reader or writer of postings, only for
another attach or detach (a detach in progress waits for the builds that have
`keyword_postings` open, holding no lock meanwhile: a test runs the two at
once). Partitions are made under an advisory lock of their own, taken after
the statistics row's lock by every caller.
The workers' sweep drops a deleted collection's partition with its chunks'
(app/document/partitions.py).

The downgrade copies every posting back into one table, with 0015's
functions.

Revision ID: 0016_postings_by_collection
Revises: 0015_keyword_index_deferred
Create Date: 2026-12-05
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0016_postings_by_collection"
down_revision: str | None = "0015_keyword_index_deferred"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_module(filename: str) -> ModuleType:
    """An earlier revision's module, for its SQL templates (revisions never change)."""
    spec = importlib.util.spec_from_file_location(filename, Path(__file__).with_name(filename))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEFERRED_REVISION = _revision_module("2026-12-05_keyword_index_deferred.py")

PARTITION_NAME = """
CREATE FUNCTION keyword_partition_name(collection_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'keyword_postings_' || right(chunk_partition_name(collection_id), 24)
"""

# What each index carries besides its keys, collection_id included: every read of postings
# names its collection (so it reads one partition), and an index-only scan can only check
# that from the index. Without it, the best postings of a word were a bitmap heap scan and a
# sort (21 ms against 13 ms for a keyword search at 10,000 chunks).
KEY_INCLUDE = "term_frequency, chunk_length, collection_id"
IMPACT_INCLUDE = "chunk_id, term_frequency, chunk_length, collection_id"

# A partition's own key and the partitioned index, built over the rows it holds (none, or a
# first fill's), then attached: the attach adopts the index, and the CHECK spares its scan.
_ATTACH = """
CREATE FUNCTION keyword_postings_attach(target text, postings_table text) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (chunk_id, term_id) '
               'INCLUDE ({key_include})', postings_table);
EXECUTE format('CREATE INDEX ON %I (term_id, impact DESC) '
               'INCLUDE ({impact_include})', postings_table);
EXECUTE format('ALTER TABLE keyword_postings ATTACH PARTITION %I FOR VALUES IN (%L)',
               postings_table, target);
END
$body$
"""
ATTACH = _ATTACH.format(key_include=KEY_INCLUDE, impact_include=IMPACT_INCLUDE)

# Made under an advisory lock of its own, so two writers never make the same one.
NEW_TABLE = """
CREATE FUNCTION keyword_postings_new_table(target text) RETURNS text
LANGUAGE plpgsql AS $body$
DECLARE
    postings_table text := keyword_partition_name(target);
BEGIN
PERFORM pg_advisory_xact_lock(hashtextextended('postings of ' || postings_table, 0));
IF to_regclass(quote_ident(postings_table)) IS NOT NULL THEN
    RETURN NULL;
END IF;
EXECUTE format('CREATE TABLE %I (LIKE keyword_postings INCLUDING DEFAULTS, '
               'CHECK (collection_id = %L))', postings_table, target);
RETURN postings_table;
END
$body$
"""

PARTITION = """
CREATE FUNCTION keyword_postings_partition(target text) RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    postings_table text;
BEGIN
IF to_regclass(quote_ident(keyword_partition_name(target))) IS NOT NULL THEN
    RETURN;
END IF;
postings_table := keyword_postings_new_table(target);
IF postings_table IS NOT NULL THEN
    PERFORM keyword_postings_attach(target, postings_table);
END IF;
END
$body$
"""

# 0015's ADD_CHUNKS in two parts, the postings with their collection, and between them the
# partitions of the collections whose words are added made (under their statistics rows'
# locks, which the first part takes). {postings}: the table the postings go into.
COUNT_CHUNKS = """
INSERT INTO keyword_collections AS k (collection_id, chunk_count)
SELECT collection_id, count(*) FROM {chunks} GROUP BY collection_id ORDER BY collection_id
ON CONFLICT (collection_id) DO UPDATE SET chunk_count = k.chunk_count + {counted};
"""
ADD_WORDS = """
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
INSERT INTO {postings} (collection_id, chunk_id, term_id, term_frequency, chunk_length, impact)
SELECT w.collection_id, w.id, t.id, w.frequency, w.length,
       w.frequency * 2.2
           / (w.frequency + 1.2 * (0.25 + 0.75 * w.length / greatest(l.average_length, 1)))
FROM words w
JOIN terms t ON t.collection_id = w.collection_id AND t.term = w.lexeme
JOIN lengths l ON l.collection_id = w.collection_id
"""
MAKE_PARTITIONS = """PERFORM keyword_postings_partition(x.collection_id)
FROM (SELECT DISTINCT collection_id FROM {indexed}) x ORDER BY x.collection_id;
"""

# 0015's REMOVE_CHUNKS, the postings deleted one collection at a time: `collection_id =
# target` prunes the DELETE to that collection's partition.
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

FOR target IN SELECT DISTINCT x.collection_id FROM {chunks} x LOOP
    DELETE FROM keyword_postings
    WHERE collection_id = target
      AND chunk_id IN (SELECT x.id FROM {chunks} x WHERE x.collection_id = target);
END LOOP;

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

# The first fill's postings go into a new table named by `postings_table` (EXECUTE ...
# USING target, as $1); ADD_WORDS holds no % that format() would read.
NEW_CHUNKS = "(SELECT * FROM chunks WHERE collection_id = $1)"

BUILD = """
CREATE OR REPLACE FUNCTION keyword_index_build(target text) RETURNS boolean
LANGUAGE plpgsql {settings}
AS $body$
DECLARE
    postings_table text;
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
{count}
postings_table := keyword_postings_new_table(target);
IF postings_table IS NULL THEN
    -- The collection has a partition already (one a deleted collection of the same id
    -- left, not yet dropped): its postings are added to it.
{add};
    RETURN true;
END IF;
EXECUTE format($words$
{add_new}
$words$, postings_table) USING target;
PERFORM keyword_postings_attach(target, postings_table);
RETURN true;
END
$body$
"""


def _settings(deferred: bool) -> dict[str, str]:
    return DEFERRED_REVISION.DEFERRED if deferred else DEFERRED_REVISION.ALWAYS


def _add(chunks: str) -> str:
    """The words of `chunks` added; only those of collections not deferred."""
    indexed = DEFERRED_REVISION.KEPT.format(chunks=chunks)
    length = DEFERRED_REVISION.CHUNK_LENGTH
    return (
        COUNT_CHUNKS.format(chunks=chunks, **_settings(deferred=True))
        + MAKE_PARTITIONS.format(indexed=indexed)
        + ADD_WORDS.format(indexed=indexed, length=length, postings="keyword_postings")
        + ";\n"
    )


def _remove(chunks: str) -> str:
    return REMOVE_CHUNKS.format(
        chunks=chunks,
        indexed=DEFERRED_REVISION.KEPT.format(chunks=chunks),
        length=DEFERRED_REVISION.CHUNK_LENGTH,
        **_settings(deferred=True),
    )


def _trigger_function(name: str, body: str, settings: str = "") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {settings} "
        f"AS $body$\nDECLARE\n    target text;\nBEGIN\n{body}\nRETURN NULL;\nEND\n$body$"
    )


def _trigger_functions() -> list[str]:
    adding = DEFERRED_REVISION.ADDING
    return [
        _trigger_function("keyword_index_add", _add("new_chunks"), adding),
        _trigger_function("keyword_index_remove", _remove("old_chunks")),
        _trigger_function(
            "keyword_index_change",
            _remove(DEFERRED_REVISION.CHANGED_OLD) + _add(DEFERRED_REVISION.CHANGED_NEW),
            adding,
        ),
    ]


def _build() -> str:
    # A build's collection is no longer deferred: every chunk of it counts (0015's ALWAYS).
    collection = DEFERRED_REVISION.COLLECTION_CHUNKS
    length = DEFERRED_REVISION.CHUNK_LENGTH
    return BUILD.format(
        settings=DEFERRED_REVISION.ADDING,
        count=COUNT_CHUNKS.format(chunks=collection, **_settings(deferred=False)),
        add=ADD_WORDS.format(indexed=collection, length=length, postings="keyword_postings"),
        add_new=ADD_WORDS.format(indexed=NEW_CHUNKS, length=length, postings="%I"),
    )


def upgrade() -> None:
    op.execute("ALTER TABLE keyword_postings RENAME TO keyword_postings_shared")
    op.execute("ALTER INDEX pk_keyword_postings RENAME TO pk_keyword_postings_shared")
    op.execute(
        "ALTER INDEX ix_keyword_postings_term_id_impact "
        "RENAME TO ix_keyword_postings_shared_term_id_impact"
    )
    op.execute(
        """
        CREATE TABLE keyword_postings (
            collection_id text NOT NULL,
            chunk_id bigint NOT NULL,
            term_id bigint NOT NULL,
            term_frequency integer NOT NULL,
            chunk_length integer NOT NULL,
            impact real NOT NULL
        ) PARTITION BY LIST (collection_id)
        """
    )
    op.execute(
        "COMMENT ON TABLE keyword_postings IS 'A word in a chunk: its frequency, the chunk''s "
        "length and its BM25 weight without IDF; one partition per collection "
        "(keyword_partition_name).'"
    )
    op.execute(
        "CREATE INDEX ix_keyword_postings_term_id_impact ON keyword_postings "
        f"(term_id, impact DESC) INCLUDE ({IMPACT_INCLUDE})"
    )
    for statement in (PARTITION_NAME, ATTACH, NEW_TABLE, PARTITION):
        op.execute(statement)
    # Each collection's postings into a table of its own, indexed after its rows.
    op.execute(
        """
        DO $move$
        DECLARE
            target text;
            postings_table text;
        BEGIN
        FOR target IN SELECT collection_id FROM keyword_collections WHERE NOT deferred
                      ORDER BY collection_id LOOP
            postings_table := keyword_postings_new_table(target);
            EXECUTE format('INSERT INTO %I SELECT t.collection_id, p.chunk_id, p.term_id, '
                           'p.term_frequency, p.chunk_length, p.impact '
                           'FROM keyword_postings_shared p JOIN keyword_terms t '
                           'ON t.id = p.term_id WHERE t.collection_id = $1', postings_table)
                USING target;
            PERFORM keyword_postings_attach(target, postings_table);
        END LOOP;
        END
        $move$
        """
    )
    op.execute("DROP TABLE keyword_postings_shared")
    for statement in _trigger_functions():
        op.execute(statement)
    op.execute(_build())
    op.execute("ANALYZE keyword_postings")


def downgrade() -> None:
    op.execute(
        "SELECT keyword_index_build(collection_id) FROM keyword_collections "
        "WHERE deferred ORDER BY collection_id"
    )
    op.execute(
        """
        CREATE TABLE keyword_postings_shared (
            chunk_id bigint NOT NULL,
            term_id bigint NOT NULL,
            term_frequency integer NOT NULL,
            chunk_length integer NOT NULL,
            impact real NOT NULL
        )
        """
    )
    op.execute(
        "INSERT INTO keyword_postings_shared "
        "SELECT chunk_id, term_id, term_frequency, chunk_length, impact FROM keyword_postings "
        "ORDER BY chunk_id, term_id"
    )
    op.execute("DROP TABLE keyword_postings")  # and its partitions
    op.execute("ALTER TABLE keyword_postings_shared RENAME TO keyword_postings")
    op.execute(
        "ALTER TABLE keyword_postings ADD CONSTRAINT pk_keyword_postings "
        "PRIMARY KEY (chunk_id, term_id) INCLUDE (term_frequency, chunk_length)"
    )
    op.execute(
        "CREATE INDEX ix_keyword_postings_term_id_impact ON keyword_postings "
        "(term_id, impact DESC) INCLUDE (chunk_id, term_frequency, chunk_length)"
    )
    op.execute(
        "COMMENT ON TABLE keyword_postings IS 'A word in a chunk: its frequency, the chunk''s "
        "length and its BM25 weight without IDF.'"
    )
    for statement in DEFERRED_REVISION._trigger_functions(deferred=True):
        op.execute(statement)
    op.execute("DROP FUNCTION keyword_index_build(text)")
    op.execute(
        DEFERRED_REVISION.BUILD.format(
            settings=DEFERRED_REVISION.ADDING,
            add=DEFERRED_REVISION._add(DEFERRED_REVISION.COLLECTION_CHUNKS, deferred=False),
        )
    )
    op.execute(
        "COMMENT ON FUNCTION keyword_index_build(text) IS 'Build the deferred keyword index "
        "of a collection from its chunks; false if it was not deferred.'"
    )
    for function in (
        "keyword_postings_partition(text)",
        "keyword_postings_new_table(text)",
        "keyword_postings_attach(text, text)",
        "keyword_partition_name(text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
