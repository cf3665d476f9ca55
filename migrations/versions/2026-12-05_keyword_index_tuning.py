"""The BM25 trigger writes a document's words 11% faster: hash joins, memory, no FK check.

`EXPLAIN ANALYZE` of the trigger on the 2,730 chunks of benchmark 1b's 1 MB
text (quiet machine, each variant the median of 3 rounds of the same INSERT,
rolled back) showed three costs that are not the index itself:

- the planner misjudges the size of `unnest(text_search)` (a million rows
  estimated, 84,512 real) and joins the words to their terms with a merge
  join, sorting all 84,512 words by their text (about 0.1 s);
- 4 MB of `work_mem`, PostgreSQL's default, spills those words to disk;
- every new word of a collection checked its foreign key to `collections`
  one row at a time (5,272 checks, 0.056 s).

So the functions that add words (`keyword_index_add`, and
`keyword_index_change`, which runs the same statements) plan without merge
joins and with 32 MB of `work_mem`, and `keyword_terms` loses its foreign key
to `collections`. Nothing depended on that key's cascade: a collection's
chunks go with it (their own cascade), and the trigger that removes a chunk's
words deletes every word left in no chunk. The test suite's invariants check
that no word outlives its chunks.

The INSERT of those 2,730 chunks with the trigger: 0.804 s -> 0.711 s.

Revision ID: 0013_keyword_index_tuning
Revises: 0012_chunks_by_collection
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_keyword_index_tuning"
down_revision: str | None = "0012_chunks_by_collection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDING_FUNCTIONS = ("keyword_index_add", "keyword_index_change")
TERMS_FOREIGN_KEY = "fk_keyword_terms_collection_id_collections"


def upgrade() -> None:
    for function in ADDING_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function}() SET enable_mergejoin = off")
        op.execute(f"ALTER FUNCTION {function}() SET work_mem = '32MB'")
    op.execute(f"ALTER TABLE keyword_terms DROP CONSTRAINT {TERMS_FOREIGN_KEY}")


def downgrade() -> None:
    # Words of collections deleted meanwhile would break the key: there are none (above).
    op.execute(
        f"ALTER TABLE keyword_terms ADD CONSTRAINT {TERMS_FOREIGN_KEY} "
        "FOREIGN KEY (collection_id) REFERENCES collections (id) ON DELETE CASCADE"
    )
    for function in ADDING_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function}() RESET ALL")
