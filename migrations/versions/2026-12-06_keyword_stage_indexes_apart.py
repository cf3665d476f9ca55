"""A staged first fill's postings are indexed apart from their rows, two indexes at once

0018's `keyword_index_stage` built a staged table of postings, then its two
indexes, all in one transaction on one connection. On two cores that was the
end of a bulk load's index builds, on one core while the other had nothing
left to do: the HNSW graph, built beside it, was done first (4 MB of text,
10,886 chunks at 1,536-d: 0.35-0.45 s of postings after the graph's last
step, in benchmark 1b's server log).

- `keyword_index_stage(chunks_table, terms_table, postings_table)` now builds
  the words and the rows of the postings only, with the same key, counts and
  BM25 weights as before.
- `keyword_postings_index_builds(postings_table)` gives the statements that
  index them, as keyword_postings_attach indexes a table of postings: one row
  per index, `build` (a CREATE INDEX each, which can run at once on two
  connections) and `constrain` (run after every build: the primary key made
  from its unique index, `ALTER TABLE ... ADD CONSTRAINT ... USING INDEX`,
  since an `ADD PRIMARY KEY` would lock the table against the other build).

app/ingestion/bulk_load.py runs the builds, and those of the staged chunks,
on whichever of its two connections is free.

Revision ID: 0019_keyword_stage_indexes_apart
Revises: 0018_keyword_index_staged
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0019_keyword_stage_indexes_apart"
down_revision: str | None = "0018_keyword_index_staged"
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
STAGED = _revision_module("2026-12-06_keyword_index_staged.py")

# 0018's function up to its postings' rows: the same words, counts, key and weights.
STAGE_ROWS = """
CREATE OR REPLACE FUNCTION keyword_index_stage(
    chunks_table text, terms_table text, postings_table text
) RETURNS TABLE (postings_key integer, chunk_count bigint, total_length bigint)
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
RETURN QUERY SELECT staged_key, chunks, total;
END
$body$
"""

# The indexes of keyword_postings_attach (migration 0017), the primary key's index named
# after its table as ADD PRIMARY KEY would name it.
INDEX_BUILDS = """
CREATE FUNCTION keyword_postings_index_builds(postings_table text)
RETURNS TABLE (build text, constrain text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $body$
SELECT format('CREATE UNIQUE INDEX %I ON %I (chunk_id, term_id) INCLUDE ({key_include})',
              postings_table || '_pkey', postings_table),
       format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I',
              postings_table, postings_table || '_pkey', postings_table || '_pkey')
UNION ALL
SELECT format('CREATE INDEX ON %I (term_id, impact DESC) INCLUDE ({impact_include})',
              postings_table),
       NULL
$body$
"""


def upgrade() -> None:
    op.execute(STAGE_ROWS.format(settings=BY_KEY.DEFERRED_REVISION.ADDING))
    op.execute(
        INDEX_BUILDS.format(key_include=BY_KEY.KEY_INCLUDE, impact_include=BY_KEY.IMPACT_INCLUDE)
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION keyword_postings_index_builds(text)")
    op.execute("DROP FUNCTION keyword_index_stage(text, text, text)")
    op.execute(
        STAGED.STAGE.format(
            settings=BY_KEY.DEFERRED_REVISION.ADDING,
            key_include=BY_KEY.KEY_INCLUDE,
            impact_include=BY_KEY.IMPACT_INCLUDE,
        )
    )
