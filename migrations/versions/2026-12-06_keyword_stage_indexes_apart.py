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

# 0018's function without its last two statements, which indexed the postings: the same
# words, counts, key and BM25 weights.
_INDEXING = (
    "EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (chunk_id, term_id) INCLUDE "
    "({key_include})',\n"
    "               postings_table);\n"
    "EXECUTE format('CREATE INDEX ON %I (term_id, impact DESC) INCLUDE ({impact_include})',\n"
    "               postings_table);\n"
)
assert STAGED.STAGE.count(_INDEXING) == 1 and STAGED.STAGE.count("CREATE FUNCTION") == 1
STAGE_ROWS = STAGED.STAGE.replace(_INDEXING, "").replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
)

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
