"""Each collection's BM25 postings are keyed by a small integer instead of its id.

Why: 0016 partitioned `keyword_postings` by `collection_id`, which every
posting and both of its indexes then carried (the indexes INCLUDE it, so a
search's read of one collection's postings stays index-only). With the API's
UUID ids that is 37 bytes more in every row and every index entry: at 10,000
chunks (268,158 postings) the postings and their indexes grew from 40.4 MB to
75.6 MB. A 4-byte integer fits in the padding that alignment leaves in the
rows and in the (term_id, impact) index's entries.

What this migration does:
- `keyword_collections.postings_key`: an integer identity, unique, given to a
  collection's statistics row when it is made. Keys are never reused: a
  collection deleted and made again under the same id gets a new key, and so
  a new table of postings.
- `keyword_postings` is partitioned by `postings_key`, which replaces
  `collection_id` as its last column (in the padding after `impact`). Each
  collection's postings are the table `keyword_partition_name(postings_key)`,
  `keyword_postings_<key>`.
- The (term_id, impact DESC) index INCLUDEs its columns in the order that
  leaves no padding: term_frequency, chunk_id, chunk_length, postings_key.
- The functions of 0016 again, by key: `keyword_postings_new_table`,
  `keyword_postings_attach`, `keyword_postings_partition`, the triggers'
  functions and `keyword_index_build`. A trigger that removes chunks reads
  each collection's key into a variable, so its DELETE is planned for that
  one table.
- Existing postings move into one table per key, each indexed after its rows.

A table of postings whose key is in no `keyword_collections` row belongs to
a deleted collection: the workers' sweep drops it. No lock is needed against
the collection being made again, since its key will not come back
(app/document/partitions.py).

Searches read the collection's key first (one more round trip per keyword or
hybrid search) and name it as a parameter, so the planner reads one table:
app/search/repository.py.

The downgrade moves every posting back into 0016's tables by collection id,
with 0016's functions.

Revision ID: 0017_keyword_postings_key
Revises: 0016_postings_by_collection
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0017_keyword_postings_key"
down_revision: str | None = "0016_postings_by_collection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_module(filename: str) -> ModuleType:
    """An earlier revision's module, for its SQL templates (revisions never change)."""
    spec = importlib.util.spec_from_file_location(filename, Path(__file__).with_name(filename))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BY_COLLECTION = _revision_module("2026-12-05_keyword_postings_by_collection.py")
DEFERRED_REVISION = BY_COLLECTION.DEFERRED_REVISION

PARTITION_NAME = """
CREATE FUNCTION keyword_partition_name(postings_key integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'keyword_postings_' || postings_key
"""

# What each index carries besides its keys, postings_key included (every read names it,
# and an index-only scan checks it from the index). In this order the (term_id, impact)
# entries need no padding: 8 + 4 + 4 + 8 + 4 + 4 bytes.
KEY_INCLUDE = "term_frequency, chunk_length, postings_key"
IMPACT_INCLUDE = "term_frequency, chunk_id, chunk_length, postings_key"

PARENT_INDEX = (
    "CREATE INDEX ix_keyword_postings_term_id_impact ON keyword_postings "
    f"(term_id, impact DESC) INCLUDE ({IMPACT_INCLUDE})"
)

_ATTACH = """
CREATE FUNCTION keyword_postings_attach(postings_key integer, postings_table text)
RETURNS void LANGUAGE plpgsql AS $body$
BEGIN
EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (chunk_id, term_id) '
               'INCLUDE ({key_include})', postings_table);
EXECUTE format('CREATE INDEX ON %I (term_id, impact DESC) '
               'INCLUDE ({impact_include})', postings_table);
EXECUTE format('ALTER TABLE keyword_postings ATTACH PARTITION %I FOR VALUES IN (%s)',
               postings_table, postings_key);
END
$body$
"""
ATTACH = _ATTACH.format(key_include=KEY_INCLUDE, impact_include=IMPACT_INCLUDE)

NEW_TABLE = """
CREATE FUNCTION keyword_postings_new_table(postings_key integer) RETURNS text
LANGUAGE plpgsql AS $body$
DECLARE
    postings_table text := keyword_partition_name(postings_key);
BEGIN
PERFORM pg_advisory_xact_lock(hashtextextended('postings of ' || postings_table, 0));
IF to_regclass(quote_ident(postings_table)) IS NOT NULL THEN
    RETURN NULL;
END IF;
EXECUTE format('CREATE TABLE %I (LIKE keyword_postings INCLUDING DEFAULTS, '
               'CHECK (postings_key = %s))', postings_table, postings_key);
RETURN postings_table;
END
$body$
"""

PARTITION = """
CREATE FUNCTION keyword_postings_partition(postings_key integer) RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    postings_table text;
BEGIN
IF to_regclass(quote_ident(keyword_partition_name(postings_key))) IS NOT NULL THEN
    RETURN;
END IF;
postings_table := keyword_postings_new_table(postings_key);
IF postings_table IS NOT NULL THEN
    PERFORM keyword_postings_attach(postings_key, postings_table);
END IF;
END
$body$
"""

# 0016's ADD_WORDS, each posting with its collection's key (from the statistics row the
# statement updates) instead of its id. {postings}: the table the postings go into.
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
    RETURNING k.collection_id, k.postings_key,
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
INSERT INTO {postings} (chunk_id, term_id, term_frequency, chunk_length, impact, postings_key)
SELECT w.id, t.id, w.frequency, w.length,
       w.frequency * 2.2
           / (w.frequency + 1.2 * (0.25 + 0.75 * w.length / greatest(l.average_length, 1))),
       l.postings_key
FROM words w
JOIN terms t ON t.collection_id = w.collection_id AND t.term = w.lexeme
JOIN lengths l ON l.collection_id = w.collection_id
"""
# The tables of the collections whose words a trigger adds, made before their postings
# (the statistics rows, and so the keys, exist: the trigger's first statement upserts them).
MAKE_PARTITIONS = """PERFORM keyword_postings_partition(k.postings_key)
FROM keyword_collections k
WHERE k.collection_id IN (SELECT x.collection_id FROM {indexed} x) ORDER BY k.postings_key;
"""

# 0016's REMOVE_CHUNKS, each collection's postings deleted by its key, read into a
# variable first: a parameter the planner knows prunes the DELETE to that one table, where
# a subquery would be planned over every collection's. A deleted collection's statistics
# row may be gone before its chunks (cascades): its key is then NULL, nothing is deleted,
# and the sweep drops the whole table.
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
    target_key := (SELECT k.postings_key FROM keyword_collections k
                   WHERE k.collection_id = target);
    DELETE FROM keyword_postings
    WHERE postings_key = target_key
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

# 0016's build, by the collection's key.
BUILD = """
CREATE OR REPLACE FUNCTION keyword_index_build(target text) RETURNS boolean
LANGUAGE plpgsql {settings}
AS $body$
DECLARE
    target_key integer;
    postings_table text;
BEGIN
-- As every writer of a collection's chunks does first: a DELETE of the collection waits
-- for the build, instead of taking the collection's row while the build holds its
-- statistics row and waits for it (updating that row twice checks its foreign key).
PERFORM 1 FROM collections WHERE id = target FOR KEY SHARE;
IF NOT FOUND THEN
    RETURN false;
END IF;
UPDATE keyword_collections SET deferred = false WHERE collection_id = target AND deferred
RETURNING postings_key INTO target_key;
IF NOT FOUND THEN
    RETURN false;
END IF;
{count}
postings_table := keyword_postings_new_table(target_key);
IF postings_table IS NULL THEN
    -- The collection's table exists already (its chunks were all deleted, and it was
    -- deferred again, before its HNSW index was built, say): its postings go into it.
{add};
    RETURN true;
END IF;
EXECUTE format($words$
{add_new}
$words$, postings_table) USING target;
PERFORM keyword_postings_attach(target_key, postings_table);
RETURN true;
END
$body$
"""


_settings = BY_COLLECTION._settings


def _add(chunks: str) -> str:
    """The words of `chunks` added; only those of collections not deferred."""
    indexed = DEFERRED_REVISION.KEPT.format(chunks=chunks)
    length = DEFERRED_REVISION.CHUNK_LENGTH
    return (
        BY_COLLECTION.COUNT_CHUNKS.format(chunks=chunks, **_settings(deferred=True))
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
        "AS $body$\nDECLARE\n    target text;\n    target_key integer;\n"
        f"BEGIN\n{body}\nRETURN NULL;\nEND\n$body$"
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
    # A build's collection is no longer deferred: every chunk of it counts.
    collection = DEFERRED_REVISION.COLLECTION_CHUNKS
    length = DEFERRED_REVISION.CHUNK_LENGTH
    return BUILD.format(
        settings=DEFERRED_REVISION.ADDING,
        count=BY_COLLECTION.COUNT_CHUNKS.format(chunks=collection, **_settings(deferred=False)),
        add=ADD_WORDS.format(indexed=collection, length=length, postings="keyword_postings"),
        add_new=ADD_WORDS.format(indexed=BY_COLLECTION.NEW_CHUNKS, length=length, postings="%I"),
    )


# The functions each revision makes, by their arguments (a name alone would be ambiguous
# while both revisions' exist).
FUNCTIONS = {
    "0016": (
        "keyword_postings_partition(text)",
        "keyword_postings_new_table(text)",
        "keyword_postings_attach(text, text)",
        "keyword_partition_name(text)",
    ),
    "0017": (
        "keyword_postings_partition(integer)",
        "keyword_postings_new_table(integer)",
        "keyword_postings_attach(integer, text)",
        "keyword_partition_name(integer)",
    ),
}


def _drop_functions(revision: str) -> None:
    for function in FUNCTIONS[revision]:
        op.execute(f"DROP FUNCTION {function}")


def _set_aside_postings() -> None:
    """The partitioned table of postings and its index renamed, for their rows to move out."""
    op.execute("ALTER TABLE keyword_postings RENAME TO keyword_postings_moving")
    op.execute(
        "ALTER INDEX ix_keyword_postings_term_id_impact "
        "RENAME TO ix_keyword_postings_moving_term_id_impact"
    )


# Each collection's postings out of `keyword_postings_moving` into the new table of its
# {partition_key} (postings_key, or collection_id for the downgrade), indexed after its
# rows and attached. In {columns} and {condition}, $1 is the collection's id and $2 its key.
MOVE_POSTINGS = """
DO $move$
DECLARE
    collection record;
    postings_table text;
BEGIN
FOR collection IN SELECT collection_id, postings_key FROM keyword_collections
                  WHERE NOT deferred ORDER BY {partition_key} LOOP
    postings_table := keyword_postings_new_table(collection.{partition_key});
    EXECUTE format('INSERT INTO %I SELECT {columns} '
                   'FROM keyword_postings_moving WHERE {condition}', postings_table)
        USING collection.collection_id, collection.postings_key;
    PERFORM keyword_postings_attach(collection.{partition_key}, postings_table);
END LOOP;
END
$move$
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE keyword_collections "
        "ADD COLUMN postings_key integer GENERATED BY DEFAULT AS IDENTITY, "
        "ADD CONSTRAINT uq_keyword_collections_postings_key UNIQUE (postings_key)"
    )
    op.execute(
        "COMMENT ON COLUMN keyword_collections.postings_key IS 'The key of the collection''s "
        "BM25 postings: their partition of keyword_postings; never reused.'"
    )
    _set_aside_postings()
    op.execute(
        """
        CREATE TABLE keyword_postings (
            chunk_id bigint NOT NULL,
            term_id bigint NOT NULL,
            term_frequency integer NOT NULL,
            chunk_length integer NOT NULL,
            impact real NOT NULL,
            postings_key integer NOT NULL
        ) PARTITION BY LIST (postings_key)
        """
    )
    op.execute(
        "COMMENT ON TABLE keyword_postings IS 'A word in a chunk: its frequency, the chunk''s "
        "length and its BM25 weight without IDF; one partition per collection "
        "(keyword_partition_name(keyword_collections.postings_key)).'"
    )
    op.execute(PARENT_INDEX)
    _drop_functions("0016")
    for statement in (PARTITION_NAME, ATTACH, NEW_TABLE, PARTITION):
        op.execute(statement)
    # Each collection's postings into the table of its key, indexed after its rows.
    op.execute(
        MOVE_POSTINGS.format(
            partition_key="postings_key",
            columns="chunk_id, term_id, term_frequency, chunk_length, impact, $2",
            condition="collection_id = $1",
        )
    )
    op.execute("DROP TABLE keyword_postings_moving")  # and its partitions
    for statement in _trigger_functions():
        op.execute(statement)
    op.execute(_build())
    op.execute("ANALYZE keyword_postings")


def downgrade() -> None:
    _set_aside_postings()
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
        f"(term_id, impact DESC) INCLUDE ({BY_COLLECTION.IMPACT_INCLUDE})"
    )
    _drop_functions("0017")
    for statement in (
        BY_COLLECTION.PARTITION_NAME,
        BY_COLLECTION.ATTACH,
        BY_COLLECTION.NEW_TABLE,
        BY_COLLECTION.PARTITION,
    ):
        op.execute(statement)
    op.execute(
        MOVE_POSTINGS.format(
            partition_key="collection_id",
            columns="$1, chunk_id, term_id, term_frequency, chunk_length, impact",
            condition="postings_key = $2",
        )
    )
    op.execute("DROP TABLE keyword_postings_moving")
    for statement in BY_COLLECTION._trigger_functions():
        op.execute(statement)
    op.execute(BY_COLLECTION._build())
    op.execute("ALTER TABLE keyword_collections DROP COLUMN postings_key")
    op.execute("ANALYZE keyword_postings")
