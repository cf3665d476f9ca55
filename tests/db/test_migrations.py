"""Alembic owns the schema: migrations run both ways and match the models."""

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from tests.support.db import (
    chunk_partition,
    create_database,
    index_chunk_partition,
    schema_differences,
)
from tests.support.invariants import POSTINGS_WITH_COLLECTION, VIOLATIONS, violations
from tests.support.settings import base_settings

TABLES = {
    "collections",
    "documents",
    "chunks",
    "processed_documents",
    "processed_chunks",
    "embedding_space",
    "ingestion_jobs",
    "document_files",
    "files",
    "file_parts",
    "file_batches",
    "file_batch_files",
    "keyword_collections",
    "keyword_terms",
    "keyword_postings",
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}

# The invariants as 0016's schema has them: postings carry their collection's id.
RULES_AT_0016 = {
    rule: sql.replace(POSTINGS_WITH_COLLECTION, "keyword_postings")
    for rule, sql in VIOLATIONS.items()
}


@pytest.fixture
def empty_database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = create_database(postgres)
    yield postgres.url(name)
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    settings = base_settings()

    migrate.upgrade(settings, empty_database_url)
    assert (
        migrate.current(settings, empty_database_url) == "0019_keyword_stage_indexes_apart (head)"
    )
    migrate.downgrade(settings, empty_database_url, "0001_initial_schema")
    assert migrate.current(settings, empty_database_url) == "0001_initial_schema"
    migrate.downgrade(settings, empty_database_url, "base")
    assert "no revision" in migrate.current(settings, empty_database_url)
    migrate.upgrade(settings, empty_database_url)
    assert (
        migrate.current(settings, empty_database_url) == "0019_keyword_stage_indexes_apart (head)"
    )


async def test_downgrade_to_base_removes_every_table(empty_database_url: str) -> None:
    settings = base_settings()
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    assert await _tables(empty_database_url) == TABLES

    await asyncio.to_thread(migrate.downgrade, settings, empty_database_url, "base")

    assert await _tables(empty_database_url) == set()


async def test_models_match_the_migrations(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(schema_differences)
    await engine.dispose()

    assert differences == []


async def test_migration_records_the_embedding_space_and_sizes_vectors(
    empty_database_url: str,
) -> None:
    settings = base_settings(
        embedding_provider="openai", embedding_model="custom-embedder", embedding_dimensions=256
    )
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)

    engine = create_async_engine(empty_database_url)
    async with engine.connect() as connection:
        space = (await connection.execute(text("SELECT * FROM embedding_space"))).one()
        column_type = await connection.scalar(
            text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
            )
        )
    await engine.dispose()

    assert (space.provider, space.model, space.dimensions) == ("openai", "custom-embedder", 256)
    assert column_type == "vector(256)"


async def test_placeholder_texts_documents_become_texts_documents(empty_database_url: str) -> None:
    """Before 0005, inserted texts lived in a document with an empty hash and cache key;
    the upgrade turns it into a `texts` document (and the downgrade back)."""
    settings = base_settings()
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url, "0004_document_versions")
    engine = create_async_engine(empty_database_url)
    placeholder = """
        WITH c AS (INSERT INTO collections (id, name) VALUES ('v', 'v') RETURNING id),
             d AS (INSERT INTO documents (collection_id, filename, content_type, size_bytes,
                                          content_sha256, status, chunk_count, chunk_size,
                                          chunk_overlap, cache_key)
                   SELECT id, 'vectordatabase', 'application/x-ragstore-vectors', 0, '',
                          'completed', 1, 0, 0, '' FROM c RETURNING id, collection_id)
        INSERT INTO chunks (document_id, collection_id, chunk_index, text, embedding)
        SELECT id, collection_id, 0, 'héllo', array_fill(0.1, ARRAY[384])::vector FROM d
    """
    row = "SELECT source, content_sha256, cache_key, chunk_size, size_bytes FROM documents"
    async with engine.begin() as connection:
        await connection.execute(text(placeholder))

    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    async with engine.connect() as connection:
        upgraded = (await connection.execute(text(row))).one()
    await asyncio.to_thread(
        migrate.downgrade, settings, empty_database_url, "0004_document_versions"
    )
    async with engine.connect() as connection:
        downgraded = (await connection.execute(text(row.replace("source, ", "")))).one()
    await engine.dispose()

    assert tuple(upgraded) == ("texts", None, None, None, len("héllo".encode()))
    assert tuple(downgraded) == ("", "", 0, 0)


async def test_the_keyword_index_is_built_for_existing_chunks(empty_database_url: str) -> None:
    """0007 builds the BM25 index from the chunks already stored; its downgrade drops it."""
    settings = base_settings()
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url, "0006_job_listing")
    engine = create_async_engine(empty_database_url)
    stored = """
        WITH c AS (INSERT INTO collections (id, name) VALUES ('a', 'a'), ('b', 'b')
                   RETURNING id),
             d AS (INSERT INTO documents (collection_id, filename, content_type, size_bytes,
                                          content_sha256, status, chunk_count, chunk_size,
                                          chunk_overlap, cache_key)
                   SELECT id, 'f.txt', 'text/plain', 1, 'x' || id, 'completed', 2, 500, 50,
                          'k' || id FROM c RETURNING id, collection_id)
        INSERT INTO chunks (document_id, collection_id, chunk_index, text, embedding)
        SELECT id, collection_id, i, 'rocket engines burn fuel, engines ' || i,
               array_fill(0.1, ARRAY[384])::vector
        FROM d CROSS JOIN generate_series(0, 1) AS i
    """
    async with engine.begin() as connection:
        await connection.execute(text(stored))

    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    async with engine.connect() as connection:
        broken = await violations(connection)
        counts = (
            await connection.execute(
                text(
                    "SELECT (SELECT sum(chunk_count) FROM keyword_collections), "
                    "(SELECT count(*) FROM keyword_terms WHERE collection_id = 'a'), "
                    "(SELECT document_frequency FROM keyword_terms "
                    " WHERE collection_id = 'a' AND term = 'engin')"
                )
            )
        ).one()
    await asyncio.to_thread(migrate.downgrade, settings, empty_database_url, "0006_job_listing")
    remaining = await _tables(empty_database_url)
    await engine.dispose()

    assert broken == {}
    # rocket, engin, burn, fuel and the numbers 0 and 1 (one chunk each).
    assert tuple(counts) == (4, 6, 2)
    assert "keyword_postings" not in remaining


async def test_vectors_of_1536_dimensions_get_a_quantized_index(empty_database_url: str) -> None:
    """0011 rebuilds a 1,536-d database's HNSW index on binary-quantized vectors, over the
    chunks already stored; the downgrade rebuilds the full-precision one. 384-d is left as
    it is."""
    settings = base_settings(embedding_provider="openai", embedding_model="text-embedding-3-small")
    assert settings.embedding_dimensions == 1536
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url, "0010_file_batches")
    engine = create_async_engine(empty_database_url)
    stored = """
        WITH c AS (INSERT INTO collections (id, name) VALUES ('a', 'a') RETURNING id),
             d AS (INSERT INTO documents (collection_id, filename, content_type, size_bytes,
                                          content_sha256, status, chunk_count, chunk_size,
                                          chunk_overlap, cache_key)
                   SELECT id, 'f.txt', 'text/plain', 1, 'x', 'completed', 3, 500, 50, 'k'
                   FROM c RETURNING id, collection_id)
        INSERT INTO chunks (document_id, collection_id, chunk_index, text, embedding)
        SELECT id, collection_id, i, 'chunk ' || i,
               array(SELECT CASE WHEN n = i THEN 1.0 ELSE 0.0 END
                     FROM generate_series(1, 1536) n)::vector
        FROM d CROSS JOIN generate_series(1, 3) AS i
    """
    index = "SELECT pg_get_indexdef('ix_chunks_embedding_hnsw'::regclass)"
    nearest = """
        SELECT text FROM chunks
        ORDER BY binary_quantize(embedding)::bit(1536)
                 <~> binary_quantize(array(SELECT CASE WHEN n = 2 THEN 1.0 ELSE 0.0 END
                                           FROM generate_series(1, 1536) n)::vector)
        LIMIT 1
    """
    async with engine.begin() as connection:
        await connection.execute(text(stored))
        before = await connection.scalar(text(index))

    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0011_quantized_vector_index"
    )
    async with engine.begin() as connection:
        upgraded = await connection.scalar(text(index))
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        await connection.execute(text("SET LOCAL enable_sort = off"))
        plan = "\n".join(row[0] for row in await connection.execute(text("EXPLAIN " + nearest)))
        found = await connection.scalar(text(nearest))
    await asyncio.to_thread(migrate.downgrade, settings, empty_database_url, "0010_file_batches")
    async with engine.connect() as connection:
        downgraded = await connection.scalar(text(index))
    await engine.dispose()

    assert "embedding vector_cosine_ops" in before
    assert "(binary_quantize(embedding))::bit(1536)) bit_hamming_ops" in upgraded
    assert "ix_chunks_embedding_hnsw" in plan
    assert found == "chunk 2"
    assert downgraded == before


# Two collections (one id with a quote and a colon) of one document of 3 chunks, stored
# before migration 0012.
TWO_COLLECTIONS = """
    WITH c AS (INSERT INTO collections (id, name) VALUES ('a', 'a'), ('it''s:b', 'b')
               RETURNING id),
         d AS (INSERT INTO documents (collection_id, filename, content_type, size_bytes,
                                      content_sha256, status, chunk_count, chunk_size,
                                      chunk_overlap, cache_key)
               SELECT id, 'f.txt', 'text/plain', 1, 'x' || id, 'completed', 3, 500, 50,
                      'k' || id FROM c RETURNING id, collection_id)
    INSERT INTO chunks (document_id, collection_id, chunk_index, text, embedding)
    SELECT id, collection_id, i, 'rocket engines number ' || i,
           array(SELECT CASE WHEN n = i THEN 1.0 ELSE 0.01 END
                 FROM generate_series(1, 384) n)::vector
    FROM d CROSS JOIN generate_series(1, 3) AS i
"""


async def test_chunks_move_into_a_partition_per_collection_and_back(
    empty_database_url: str,
) -> None:
    """0012 moves stored chunks, with their ids, into one indexed partition per collection
    (an id with a quote and a colon included); searches, the BM25 index and new writes work
    on them; the downgrade puts every chunk back into one table, ids and indexes as before."""
    settings = base_settings()
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0011_quantized_vector_index"
    )
    engine = create_async_engine(empty_database_url)
    rows = "SELECT array_agg((id, collection_id, text) ORDER BY id)::text FROM chunks"
    where = """
        SELECT array_agg(c.tableoid::regclass::text || ' ' || c.collection_id ORDER BY c.id)
        FROM chunks c
    """
    nearest = """
        SELECT text FROM chunks WHERE collection_id = 'it''s:b' AND in_graph
        ORDER BY embedding <=> array(SELECT CASE WHEN n = 2 THEN 1.0 ELSE 0.01 END
                                     FROM generate_series(1, 384) n)::vector
        LIMIT 1
    """
    add = """
        WITH added AS (
            INSERT INTO chunks (document_id, collection_id, chunk_index, text, embedding)
            SELECT document_id, collection_id, 9, 'added later', embedding
            FROM chunks WHERE collection_id = 'a' AND chunk_index = 1
            RETURNING id, document_id
        ), counted AS (
            UPDATE documents SET chunk_count = chunk_count + 1
            WHERE id IN (SELECT document_id FROM added)
        )
        SELECT id FROM added
    """
    index = "SELECT pg_get_indexdef('ix_chunks_embedding_hnsw'::regclass)"
    async with engine.begin() as connection:
        await connection.execute(text(TWO_COLLECTIONS))
        before = await connection.scalar(text(rows))
        index_before = await connection.scalar(text(index))

    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    async with engine.begin() as connection:
        after = await connection.scalar(text(rows))
        placed = await connection.scalar(text(where))
        names = (
            await connection.execute(
                text("SELECT chunk_partition_name('a'), chunk_partition_name('it''s:b')")
            )
        ).one()
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        await connection.execute(text("SET LOCAL enable_sort = off"))
        plan = "\n".join(row[0] for row in await connection.execute(text("EXPLAIN " + nearest)))
        found = await connection.scalar(text(nearest))
        partition_options = await connection.scalar(
            text("SELECT reloptions FROM pg_class WHERE relname = chunk_partition_name('a')")
        )
        added_id = await connection.scalar(text(add))
        with_added = await connection.scalar(text(rows))
    async with engine.connect() as connection:
        broken = await violations(connection)
        differences = await connection.run_sync(schema_differences)
    await asyncio.to_thread(
        migrate.downgrade, settings, empty_database_url, "0011_quantized_vector_index"
    )
    async with engine.begin() as connection:
        downgraded = await connection.scalar(text(rows))
        index_after = await connection.scalar(text(index))
        kind, options_after = (
            await connection.execute(
                text("SELECT relkind::text, reloptions FROM pg_class WHERE relname = 'chunks'")
            )
        ).one()
        next_id = await connection.scalar(text(add.replace(" 9,", " 10,")))
    await engine.dispose()

    assert after == before
    partition_a, partition_b = names
    assert placed == [f"{partition_a} a"] * 3 + [f"{partition_b} it's:b"] * 3
    assert f"{partition_b}_embedding_hnsw" in plan
    assert found == "rocket engines number 2"
    assert added_id == 7  # the identity sequence went on where the old table's stopped
    assert broken == {}
    assert differences == []
    assert downgraded == with_added
    assert kind == "r"
    # Rows stay inline (0003), in the partitions and back in the one table.
    assert partition_options == options_after == ["toast_tuple_target=8160"]
    assert index_after == index_before
    assert next_id == 8


async def test_hnsw_indexes_hold_the_chunks_in_the_graph_and_back(empty_database_url: str) -> None:
    """0014 adds `in_graph` (true for every chunk stored) and rebuilds each partition's HNSW
    index, with its own options, as a partial one `WHERE in_graph`; the downgrade rebuilds
    them whole and drops the column."""
    settings = base_settings()
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0011_quantized_vector_index"
    )
    engine = create_async_engine(empty_database_url)
    indexes = """
        SELECT array_agg(pg_get_indexdef(x.indexrelid) ORDER BY i.relname)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_am a ON a.oid = i.relam WHERE a.amname = 'hnsw'
    """
    in_graph = "SELECT array_agg(DISTINCT in_graph) FROM chunks"
    column = """
        SELECT count(*) FROM pg_attribute
        WHERE attrelid = 'chunks'::regclass AND attname = 'in_graph' AND NOT attisdropped
    """
    async with engine.begin() as connection:
        await connection.execute(text(TWO_COLLECTIONS))
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0013_keyword_index_tuning"
    )
    async with engine.begin() as connection:
        # An option of its own, which the rebuild keeps.
        partition = await connection.scalar(text("SELECT chunk_partition_name('a')"))
        await connection.execute(text(f"ALTER INDEX {partition}_embedding_hnsw SET (m = 24)"))
        before = await connection.scalar(text(indexes))

    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    async with engine.connect() as connection:
        upgraded = await connection.scalar(text(indexes))
        flags = await connection.scalar(text(in_graph))
        pending_index = await connection.scalar(
            text("SELECT pg_get_indexdef('ix_chunks_graph_pending'::regclass)")
        )
        differences = await connection.run_sync(schema_differences)
    await asyncio.to_thread(
        migrate.downgrade, settings, empty_database_url, "0013_keyword_index_tuning"
    )
    async with engine.connect() as connection:
        downgraded = await connection.scalar(text(indexes))
        columns = await connection.scalar(text(column))
    await engine.dispose()

    assert len(before) == 2 and "m='24'" in " ".join(before)
    assert upgraded == [f"{definition} WHERE in_graph" for definition in before]
    assert flags == [True]
    assert pending_index.endswith("(collection_id) WHERE (NOT in_graph)")
    assert differences == []
    assert downgraded == before
    assert columns == 0


async def test_postings_move_into_a_table_per_collection_and_back(
    empty_database_url: str,
) -> None:
    """0016 moves each collection's BM25 postings into a partition of its own (an id with a
    quote and a colon included), with its own primary key; a search's read of postings
    touches one partition; chunks written by SQL into a new collection get a partition
    and postings; a delete takes its postings; the downgrade puts them all back in one
    table."""
    settings = base_settings()
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0011_quantized_vector_index"
    )
    engine = create_async_engine(empty_database_url)
    postings = (
        "SELECT array_agg((chunk_id, term_id, term_frequency, chunk_length, impact) "
        "ORDER BY chunk_id, term_id)::text FROM keyword_postings"
    )
    placed = """
        SELECT array_agg(DISTINCT p.tableoid::regclass::text || ' ' || p.collection_id
                         ORDER BY p.tableoid::regclass::text || ' ' || p.collection_id)
        FROM keyword_postings p
    """
    read_one = """
        EXPLAIN SELECT chunk_id FROM keyword_postings
        WHERE collection_id = 'it''s:b' AND term_id = 1
    """
    keys = """
        SELECT array_agg(pg_get_constraintdef(c.oid) ORDER BY c.conrelid::regclass::text)
        FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
        WHERE i.inhparent = 'keyword_postings'::regclass AND c.contype = 'p'
    """
    by_hand = TWO_COLLECTIONS.replace("('a', 'a'), ('it''s:b', 'b')", "('c', 'c')")
    async with engine.begin() as connection:
        await connection.execute(text(TWO_COLLECTIONS))
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0015_keyword_index_deferred"
    )
    async with engine.begin() as connection:
        before = await connection.scalar(text(postings))

    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0016_postings_by_collection"
    )
    async with engine.connect() as connection:
        await chunk_partition(connection, "c")
    async with engine.begin() as connection:
        after = await connection.scalar(text(postings))
        partitions = await connection.scalar(text(placed))
        names = (
            await connection.execute(
                text("SELECT keyword_partition_name('a'), keyword_partition_name('it''s:b')")
            )
        ).one()
        plan = "\n".join(row[0] for row in await connection.execute(text(read_one)))
        primary_keys = await connection.scalar(text(keys))
        await connection.execute(text(by_hand))
        written_by_hand = await connection.scalar(
            text(
                "SELECT count(*) FROM keyword_postings "
                "WHERE tableoid = to_regclass(keyword_partition_name('c'))"
            )
        )
        await connection.execute(text("DELETE FROM documents WHERE collection_id = 'a'"))
        with_changes = await connection.scalar(text(postings))
    async with engine.connect() as connection:
        await index_chunk_partition(connection, "c")
        broken = await violations(connection, rules=RULES_AT_0016)
    await asyncio.to_thread(
        migrate.downgrade, settings, empty_database_url, "0015_keyword_index_deferred"
    )
    async with engine.begin() as connection:
        downgraded = await connection.scalar(text(postings))
        kind = await connection.scalar(
            text("SELECT relkind::text FROM pg_class WHERE relname = 'keyword_postings'")
        )
        key = await connection.scalar(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'pk_keyword_postings'"
            )
        )
    await engine.dispose()

    assert before and after == before
    partition_a, partition_b = names
    assert set(partitions) == {f"{partition_a} a", f"{partition_b} it's:b"}
    assert partition_b in plan and partition_a not in plan
    primary_key = "PRIMARY KEY (chunk_id, term_id) INCLUDE (term_frequency, chunk_length)"
    own_key = primary_key.replace("chunk_length)", "chunk_length, collection_id)")
    assert primary_keys == [own_key, own_key]
    # rocket, engin, number and the chunk's number: 4 words in each of 3 chunks.
    assert written_by_hand == 12
    assert broken == {}
    assert downgraded == with_changes
    assert kind == "r"
    assert key == primary_key


async def test_postings_move_to_a_table_per_key_and_back(empty_database_url: str) -> None:
    """0017 keys each collection's postings by an integer of its statistics row: they move
    into the table of that key with their values (an id with a quote and a colon
    included), a read naming one key touches one table, chunks written by SQL into a new
    collection get a key, a table and postings, a delete takes its postings; the downgrade
    puts them back into 0016's tables by collection id."""
    settings = base_settings()
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0011_quantized_vector_index"
    )
    engine = create_async_engine(empty_database_url)
    postings = (
        "SELECT array_agg((chunk_id, term_id, term_frequency, chunk_length, impact) "
        "ORDER BY chunk_id, term_id)::text FROM keyword_postings"
    )
    by_collection = """
        SELECT array_agg(DISTINCT p.tableoid::regclass::text || ' ' || p.collection_id
                         ORDER BY p.tableoid::regclass::text || ' ' || p.collection_id)
        FROM keyword_postings p
    """
    by_key = by_collection.replace(
        "FROM keyword_postings p",
        "FROM keyword_postings p JOIN keyword_collections k USING (postings_key)",
    ).replace("p.collection_id", "k.collection_id")
    tables = """
        SELECT array_agg(keyword_partition_name(postings_key) || ' ' || collection_id
                         ORDER BY keyword_partition_name(postings_key))
        FROM keyword_collections
    """
    # As a search reads them: the key is a parameter (app/search/repository.py).
    read_one = """
        EXPLAIN SELECT chunk_id FROM keyword_postings WHERE postings_key = {key} AND term_id = 1
    """
    key_of_b = "SELECT postings_key FROM keyword_collections WHERE collection_id = 'it''s:b'"
    keys = """
        SELECT array_agg(pg_get_constraintdef(c.oid) ORDER BY c.conrelid::regclass::text)
        FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
        WHERE i.inhparent = 'keyword_postings'::regclass AND c.contype = 'p'
    """
    by_hand = TWO_COLLECTIONS.replace("('a', 'a'), ('it''s:b', 'b')", "('c', 'c')")
    async with engine.begin() as connection:
        await connection.execute(text(TWO_COLLECTIONS))
    await asyncio.to_thread(
        migrate.upgrade, settings, empty_database_url, "0016_postings_by_collection"
    )
    async with engine.begin() as connection:
        before = await connection.scalar(text(postings))

    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    async with engine.connect() as connection:
        await chunk_partition(connection, "c")
    async with engine.begin() as connection:
        after = await connection.scalar(text(postings))
        placed = await connection.scalar(text(by_key))
        named = await connection.scalar(text(tables))
        read = read_one.format(key=await connection.scalar(text(key_of_b)))
        plan = "\n".join(row[0] for row in await connection.execute(text(read)))
        primary_keys = await connection.scalar(text(keys))
        await connection.execute(text(by_hand))
        written_by_hand = await connection.scalar(
            text(
                "SELECT count(*) FROM keyword_postings p JOIN keyword_collections k "
                "USING (postings_key) WHERE k.collection_id = 'c' "
                "AND p.tableoid = to_regclass(keyword_partition_name(k.postings_key))"
            )
        )
        await connection.execute(text("DELETE FROM documents WHERE collection_id = 'a'"))
        with_changes = await connection.scalar(text(postings))
    async with engine.connect() as connection:
        await index_chunk_partition(connection, "c")
        broken = await violations(connection)
        differences = await connection.run_sync(schema_differences)
    await asyncio.to_thread(
        migrate.downgrade, settings, empty_database_url, "0016_postings_by_collection"
    )
    async with engine.begin() as connection:
        downgraded = await connection.scalar(text(postings))
        placed_back = await connection.scalar(text(by_collection))
        names_back = await connection.scalar(
            text(
                "SELECT array_agg(keyword_partition_name(id) || ' ' || id ORDER BY 1) "
                "FROM collections WHERE id <> 'a'"
            )
        )
        key_column = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_attribute "
                "WHERE attrelid = 'keyword_collections'::regclass AND attname = 'postings_key'"
            )
        )
    await engine.dispose()

    assert before and after == before
    assert sorted(placed) == sorted(named)
    partition_b = next(table for table in named if table.endswith(" it's:b")).split()[0]
    assert partition_b in plan and plan.count("keyword_postings_") == 1
    primary_key = (
        "PRIMARY KEY (chunk_id, term_id) INCLUDE (term_frequency, chunk_length, postings_key)"
    )
    assert primary_keys == [primary_key, primary_key]
    # rocket, engin, number and the chunk's number: 4 words in each of 3 chunks.
    assert written_by_hand == 12
    assert broken == {}
    assert differences == []
    assert downgraded == with_changes
    assert sorted(placed_back) == sorted(names_back)
    assert key_column == 0


async def test_the_staged_keyword_functions_come_with_0018_and_go_with_its_downgrade(
    empty_database_url: str,
) -> None:
    """0018 adds only the two functions of a bulk load's keyword index (app/document/
    staging.py); its downgrade removes them and nothing else."""
    settings = base_settings()
    functions = """
        SELECT array_agg(proname::text ORDER BY proname) FROM pg_proc
        WHERE proname IN ('keyword_index_stage', 'keyword_index_publish')
    """
    engine = create_async_engine(empty_database_url)
    try:
        await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
        async with engine.connect() as connection:
            at_head = await connection.scalar(text(functions))
        tables_at_head = await _tables(empty_database_url)
        await asyncio.to_thread(
            migrate.downgrade, settings, empty_database_url, "0017_keyword_postings_key"
        )
        async with engine.connect() as connection:
            after_downgrade = await connection.scalar(text(functions))
        tables_after = await _tables(empty_database_url)
    finally:
        await engine.dispose()

    assert at_head == ["keyword_index_publish", "keyword_index_stage"]
    assert after_downgrade is None
    assert tables_after == tables_at_head


# A table of one chunk, outside `chunks`, as a bulk load stages one; then its BM25 words and
# postings staged; then the names of the postings' indexes and constraints.
STAGE_ONE_CHUNK = (
    "CREATE TABLE one_chunk (LIKE chunks INCLUDING DEFAULTS INCLUDING GENERATED)",
    "INSERT INTO one_chunk (document_id, collection_id, chunk_index, text, metadata, embedding) "
    "SELECT gen_random_uuid(), 'c', 0, 'wind tunnel flow', '{}', "
    "       array_fill(0.5::real, ARRAY[atttypmod])::vector "
    "FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'",
    "SELECT keyword_index_stage('one_chunk', 'one_terms', 'one_postings')",
)
POSTINGS_INDEXES = """
    SELECT (SELECT count(*) FROM pg_indexes WHERE tablename = 'one_postings'),
           (SELECT count(*) FROM pg_constraint
            WHERE conrelid = 'one_postings'::regclass AND contype = 'p'),
           (SELECT count(*) FROM one_postings)
"""


async def _stage_one_chunk(url: str, build_indexes: bool) -> tuple[int, int, int]:
    """(indexes, primary keys, postings) of one chunk's staged postings, their indexes
    built as keyword_postings_index_builds says if `build_indexes`; nothing is kept."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            for statement in STAGE_ONE_CHUNK:
                await connection.execute(text(statement))
            if build_indexes:
                builds = (
                    await connection.execute(
                        text("SELECT * FROM keyword_postings_index_builds('one_postings')")
                    )
                ).all()
                for build, _ in builds:
                    await connection.execute(text(build))
                for _, constrain in builds:
                    if constrain is not None:
                        await connection.execute(text(constrain))
            counts = (await connection.execute(text(POSTINGS_INDEXES))).one()
            await connection.rollback()
    finally:
        await engine.dispose()
    return (int(counts[0]), int(counts[1]), int(counts[2]))


async def test_0019_stages_postings_unindexed_and_says_how_to_index_them(
    empty_database_url: str,
) -> None:
    """At 0019 keyword_index_stage leaves the staged postings unindexed, and the statements
    of keyword_postings_index_builds give them 0018's indexes: a primary key and the
    (term_id, impact) index. Its downgrade brings 0018's function back."""
    settings = base_settings()
    await asyncio.to_thread(migrate.upgrade, settings, empty_database_url)
    unindexed = await _stage_one_chunk(empty_database_url, build_indexes=False)
    indexed = await _stage_one_chunk(empty_database_url, build_indexes=True)
    await asyncio.to_thread(
        migrate.downgrade, settings, empty_database_url, "0018_keyword_index_staged"
    )
    by_0018 = await _stage_one_chunk(empty_database_url, build_indexes=False)

    assert unindexed == (0, 0, 3)
    assert indexed == (2, 1, 3)
    assert by_0018 == (2, 1, 3)
