"""Values at the edges of what Python, the driver and PostgreSQL can hold, drawn by
Hypothesis and sent over HTTP: upload metadata and search filters with huge and tiny
numbers, dates at the ends of the calendar with extreme offsets, deep and odd keys. No
answer may be a 5xx; a value that cannot be stored or compared is a 422 naming the field."""

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.servers import ThreadedServer
from tests.support.uploads import long_text

EXAMPLES = 120

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**308, -(10**1000)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0]),
)
offsets = st.sampled_from(["", "Z", "+14:00", "-14:00", "+23:59", "-23:59"])
dates = st.builds(
    lambda year, offset, time: f"{year:04d}-01-01{time}{offset if time else ''}",
    st.sampled_from([1, 2, 1969, 1970, 2038, 9998, 9999]),
    offsets,
    st.sampled_from(["", "T00:00:00", "T23:59:59.999999"]),
)
scalars = st.one_of(numbers, dates, st.booleans(), st.text(max_size=20))
keys = st.one_of(
    st.sampled_from(["page", "year", "n", "filename"]), st.text(min_size=1, max_size=8)
)


def comparison() -> st.SearchStrategy[dict[str, Any]]:
    ranged = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["gt", "gte", "lt", "lte"]),
            "key": keys,
            "value": st.one_of(numbers, dates),
        }
    )
    exact = st.fixed_dictionaries(
        {"type": st.sampled_from(["eq", "ne"]), "key": keys, "value": scalars}
    )
    listed = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["in", "nin"]),
            "key": keys,
            "value": st.lists(scalars, min_size=1, max_size=4),
        }
    )
    return st.one_of(ranged, exact, listed)


filters = st.recursive(
    comparison(),
    lambda children: st.fixed_dictionaries(
        {
            "type": st.sampled_from(["and", "or"]),
            "filters": st.lists(children, min_size=1, max_size=3),
        }
    ),
    max_leaves=6,
)
# Upload metadata may not use the keys ragstore sets on chunks (page, filename, ...).
metadata_keys = st.one_of(
    st.sampled_from(["edition", "year", "n"]), st.text(min_size=1, max_size=8)
)
metadata = st.dictionaries(
    metadata_keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=4
)


@pytest.fixture
def seeded(running_app: ThreadedServer) -> str:
    with httpx.Client(base_url=running_app.url, timeout=30) as client:
        client.post(
            "/api/upload-document",
            files={"file": ("seed.txt", long_text(2).encode())},
            data={"session_id": "edge", "metadata": json.dumps({"year": 2020, "edition": 3})},
        ).raise_for_status()
    return running_app.url


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filter_=filters, mode=st.sampled_from(["vector", "keyword", "hybrid"]))
def test_search_filters_at_the_edges_never_answer_5xx(
    seeded: str, filter_: dict[str, Any], mode: str
) -> None:
    with httpx.Client(base_url=seeded, timeout=30) as client:
        answer = client.post(
            "/api/collections/edge/search",
            json={"query": "HNSW graph", "mode": mode, "filters": filter_},
        )

    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert answer.json()["detail"]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=metadata)
def test_upload_metadata_at_the_edges_never_answers_5xx(
    seeded: str, values: dict[str, Any]
) -> None:
    with httpx.Client(base_url=seeded, timeout=30) as client:
        answer = client.post(
            "/api/upload-document",
            # Content of its own, so the metadata is stored, not found already processed.
            files={"file": ("edge.txt", f"{long_text(1)}\n\n{json.dumps(values)}".encode())},
            data={"session_id": "edge", "metadata": json.dumps(values)},
        )

    assert answer.status_code in (200, 422), answer.text
