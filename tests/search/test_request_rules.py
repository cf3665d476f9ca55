"""The resource API refuses fields it does not know (a misspelt `top_k` would silently
give the default); the original routes stay lenient. Filters also take a shorthand."""

import httpx

from tests.support.uploads import upload

SEARCH = "/api/collections/manuals/search"


async def seeded(client: httpx.AsyncClient) -> None:
    for product, name in (("x200", "a.txt"), ("x300", "b.txt"), ("x400", "c.txt")):
        text = f"The {product} manual. Reset the device by holding the power button."
        await upload(
            client, text, name, session_id="manuals", metadata=f'{{"product": "{product}"}}'
        )


def filenames(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(result["filename"] for result in answer.json()["results"])


async def test_unknown_fields_are_refused_by_name_on_the_resource_api(
    client: httpx.AsyncClient,
) -> None:
    await seeded(client)

    misspelt = await client.post(SEARCH, json={"query": "reset", "top_k": 10})
    original = await client.post(
        "/api/search", json={"query": "reset", "session_id": "manuals", "top_k": 10}
    )
    create = await client.post("/api/collections", json={"name": "x", "descripton": "typo"})

    assert misspelt.status_code == 422
    assert misspelt.json()["detail"] == "body.top_k: Extra inputs are not permitted"
    assert original.status_code == 200
    assert create.status_code == 422 and "body.descripton" in create.json()["detail"]


async def test_the_filter_shorthand_means_equals_and_a_list_means_one_of(
    client: httpx.AsyncClient,
) -> None:
    await seeded(client)

    def search(filters: object) -> dict[str, object]:
        return {"query": "reset device", "mode": "keyword", "k": 10, "filters": filters}

    short = await client.post(SEARCH, json=search({"product": "x200"}))
    full = await client.post(SEARCH, json=search({"type": "eq", "key": "product", "value": "x200"}))
    listed = await client.post(SEARCH, json=search({"product": ["x200", "x400"]}))
    both = await client.post(SEARCH, json=search({"product": "x300", "filename": "b.txt"}))
    nested = await client.post(SEARCH, json=search({"product": {"gte": "x300"}}))

    assert filenames(short) == filenames(full) == ["a.txt"]
    assert filenames(listed) == ["a.txt", "c.txt"]
    assert filenames(both) == ["b.txt"]
    assert nested.status_code == 422
    detail = nested.json()["detail"]
    assert "'product' holds an object" in detail
    assert '{"type": "gte", "key": "product", "value": ...}' in detail
