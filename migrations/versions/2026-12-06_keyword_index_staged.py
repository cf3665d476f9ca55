"""A first fill's BM25 words and postings built in tables of their own, then published

Issue 17's bulk path (app/document/bulk_loads.py) writes a new collection's
first chunks into a table outside `chunks`, builds every index over them at
once on several connections, and publishes it all in the upload's commit.
Two functions do its keyword part:

- `keyword_index_stage(chunks_table, terms_table, postings_table)` builds the
  words of `chunks_table` into `terms_table`, their ids taken from the
  sequence of `keyword_terms`, and the postings into `postings_table`, with a
  postings key taken from the sequence of `keyword_collections`, indexed after
  their rows as `keyword_postings_attach` indexes them. It returns the key,
  the chunks and their total length. Nothing any other transaction reads is
  touched: the tables are new, and the sequences never roll back.
- `keyword_index_publish(...)` makes them the collection's: its statistics
  row (the staged key, not deferred), its words (with their staged ids), and
  the postings table renamed to `keyword_partition_name(key)` and attached.

The postings are written in one pass over the chunks. keyword_index_build
reads each chunk's words into a materialized CTE, scanned again for the
average length; here the words' totals come from the terms table, so the
rows stream into the table (a probe at 10,000 chunks of 1,536-d, 268,158
postings, median of 3: 0.57 s for keyword_index_build's statement, 0.49 s
for this one). The BM25 weight is keyword_index_build's (k1 = 1.2, b = 0.75).

Revision ID: 0018_keyword_index_staged
Revises: 0017_keyword_postings_key
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0018_keyword_index_staged"
down_revision: str | None = "0017_keyword_postings_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_module(filename: str) -> ModuleType:
    """An earlier revision's module, for its SQL templates (revisions never change)."""
    spec = importlib.util.spec_from_file_location(filename, Path(__file__).with_name(filename))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BY_KEY = _revision_module("2026-12-06_keyword_postings_key.py")

STAGE = """
CREATE FUNCTION keyword_index_stage(chunks_table text, terms_table text, postings_table text)
RETURNS TABLE (postings_key integer, chunk_count bigint, total_length bigint)
LANGUAGE plpgsql {settings}
AS $body$
DECLARE
    staged_key integer := nextval(pg_get_serial_sequence('keyword_collections', 'postings_key'));
    chunks bigint;
    total bigint;
BEGIN
EXECUTE format($terms$
    CREATE TABLE %I AS
    SELECT nextval(pg_get_serial_sequence('keyword_terms', 'id')) AS id, w.term,
           w.document_frequency, w.occurrences
    FROM (SELECT u.lexeme AS term, count(*)::integer AS document_frequency,
                 sum(greatest(cardinality(u.positions), 1))::bigint AS occurrences
          FROM %I c CROSS JOIN LATERAL unnest(c.text_search) u
          GROUP BY u.lexeme) w
$terms$, terms_table, chunks_table);
EXECUTE format('SELECT count(*) FROM %I', chunks_table) INTO chunks;
EXECUTE format('SELECT coalesce(sum(occurrences), 0) FROM %I', terms_table) INTO total;
EXECUTE format('CREATE TABLE %I (LIKE keyword_postings INCLUDING DEFAULTS, '
               'CHECK (postings_key = %s))', postings_table, staged_key);
-- Each chunk's length is summed over its own words (a window per chunk), as
-- keyword_index_build's CHUNK_LENGTH sums them.
EXECUTE format($postings$
    INSERT INTO %I (chunk_id, term_id, term_frequency, chunk_length, impact, postings_key)
    SELECT w.id, t.id, w.frequency, w.length,
           w.frequency * 2.2 / (w.frequency + 1.2 * (0.25 + 0.75 * w.length / $1)), $2
    FROM (SELECT c.id, u.lexeme, u.frequency, u.length
          FROM %I c
          CROSS JOIN LATERAL (
              SELECT x.lexeme, greatest(cardinality(x.positions), 1) AS frequency,
                     (sum(greatest(cardinality(x.positions), 1)) OVER ())::integer AS length
              FROM unnest(c.text_search) x
          ) u) w
    JOIN %I t ON t.term = w.lexeme
$postings$, postings_table, chunks_table, terms_table)
USING greatest(total::float8 / greatest(chunks, 1), 1), staged_key;
EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (chunk_id, term_id) INCLUDE ({key_include})',
               postings_table);
EXECUTE format('CREATE INDEX ON %I (term_id, impact DESC) INCLUDE ({impact_include})',
               postings_table);
RETURN QUERY SELECT staged_key, chunks, total;
END
$body$
"""

PUBLISH = """
CREATE FUNCTION keyword_index_publish(
    target text, terms_table text, postings_table text,
    staged_key integer, chunks bigint, total bigint
) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
-- A collection with no chunks may have a statistics row (a first fill cut short): it
-- takes the staged key, and its old key's table, if any, is the sweep's.
INSERT INTO keyword_collections AS k
    (collection_id, chunk_count, total_length, postings_key, deferred)
VALUES (target, chunks, total, staged_key, false)
ON CONFLICT (collection_id) DO UPDATE
    SET chunk_count = excluded.chunk_count, total_length = excluded.total_length,
        postings_key = excluded.postings_key, deferred = false
    WHERE k.chunk_count = 0;
IF NOT FOUND THEN
    RAISE EXCEPTION 'collection % has indexed chunks already', target;
END IF;
EXECUTE format('INSERT INTO keyword_terms (id, collection_id, term, document_frequency) '
               'OVERRIDING SYSTEM VALUE '
               'SELECT id, $1, term, document_frequency FROM %I', terms_table)
USING target;
EXECUTE format('DROP TABLE %I', terms_table);
EXECUTE format('ALTER TABLE %I RENAME TO %I', postings_table, keyword_partition_name(staged_key));
EXECUTE format('ALTER TABLE keyword_postings ATTACH PARTITION %I FOR VALUES IN (%s)',
               keyword_partition_name(staged_key), staged_key);
END
$body$
"""


def upgrade() -> None:
    op.execute(
        STAGE.format(
            settings=BY_KEY.DEFERRED_REVISION.ADDING,
            key_include=BY_KEY.KEY_INCLUDE,
            impact_include=BY_KEY.IMPACT_INCLUDE,
        )
    )
    op.execute(PUBLISH)


def downgrade() -> None:
    op.execute("DROP FUNCTION keyword_index_publish(text, text, text, integer, bigint, bigint)")
    op.execute("DROP FUNCTION keyword_index_stage(text, text, text)")
