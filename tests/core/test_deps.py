"""The request's session and the shared page offset, over real HTTP."""

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.web.dependencies import MAX_OFFSET
from tests.support.db import scalar
from tests.support.uploads import long_text, upload


async def test_an_offset_beyond_postgresql_bigint_is_422_on_every_paged_route(
    client: httpx.AsyncClient,
) -> None:
    document_id = (await upload(client, long_text(1), session_id="c")).json()["document_id"]
    routes = [
        "/api/collections",
        "/api/sessions",
        "/api/collections/c/documents",
        f"/api/collections/c/documents/{document_id}/chunks",
    ]

    for route in routes:
        too_far = await client.get(route, params={"offset": MAX_OFFSET + 1})
        furthest = await client.get(route, params={"offset": MAX_OFFSET})

        assert too_far.status_code == 422, (route, too_far.text)
        assert too_far.json()["detail"] == (
            f"query.offset: Input should be less than or equal to {MAX_OFFSET}"
        )
        assert furthest.status_code == 200, (route, furthest.text)


async def test_a_write_whose_commit_fails_is_not_answered_as_a_success(
    client: httpx.AsyncClient, db: AsyncConnection
) -> None:
    # A deferred constraint trigger fails at COMMIT. The answer can report that only
    # if the commit happens before the response is sent (it used to come after a 201).
    await db.execute(
        text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
        )
    )
    await db.execute(
        text(
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON collections "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.name = 'doomed') "
            "EXECUTE FUNCTION refuse()"
        )
    )
    await db.commit()

    response = await client.post("/api/collections", json={"name": "doomed", "id": "doomed"})

    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert await scalar(db, "SELECT count(*) FROM collections") == 0
