"""Every route fuzzed from the app's own OpenAPI description (Schemathesis).

For each operation, Schemathesis draws requests from /openapi.json, both ones the
schema allows and ones it forbids, and sends them over HTTP to the app served by
uvicorn, with the fake OpenAI server behind it and a database of its own, seeded
with a collection and a document that half the drawn requests point their ids at.
No answer may be a 5xx, and each status, content type and body must be documented.

Bounded and reproducible for CI: a fixed seed, EXAMPLES_PER_OPERATION examples per
operation (about 1,100 requests, 45 s on two cores), no shrinking and no example
database; a failure prints the curl command that reproduces it.
"""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case

from app.main import create_app
from tests.support.servers import ThreadedServer
from tests.support.settings import APP_SETTINGS, base_settings
from tests.support.uploads import long_text

EXAMPLES_PER_OPERATION = 50

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20240611,
        "generation": {"mode": "all", "no-shrink": True, "database": "none"},
        # The coverage phase's case count grows with the schema, not with max_examples.
        "phases": {"coverage": {"enabled": False}},
    }
)
# The description the app serves at /openapi.json (the `seeded` fixture checks that the
# server sends the same). It is loaded at import because pytest needs the operations
# before any server runs: schemathesis.pytest.from_fixture, which would load it from
# the running server, breaks on pytest 9.2 (it sets the removed `Node._nodeid`).
schema = schemathesis.openapi.from_dict(
    create_app(base_settings(**APP_SETTINGS)).openapi(), config=CONFIG
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]

SEEDED_COLLECTION = "fuzz-seed"
SEEDED_FILENAME = "notes.txt"


@pytest.fixture
def seeded(running_app: ThreadedServer) -> dict[str, str]:
    """A collection with one document: the ids a drawn request may be pointed at."""
    with httpx.Client(base_url=running_app.url, timeout=30) as client:
        assert client.get("/openapi.json").json() == schema.raw_schema
        client.post(
            "/api/collections", json={"name": "seed", "id": SEEDED_COLLECTION}
        ).raise_for_status()
        uploaded = client.post(
            f"/api/collections/{SEEDED_COLLECTION}/documents",
            files={"file": (SEEDED_FILENAME, long_text(2).encode())},
        )
        uploaded.raise_for_status()
    return {
        "collection_id": SEEDED_COLLECTION,
        "session_id": SEEDED_COLLECTION,
        "document_id": uploaded.json()["id"],
        "document_name": SEEDED_FILENAME,
    }


def aim_at_seeded(case: Case, ids: dict[str, str]) -> None:
    """Point the case's ids (in the path, or a body's session_id) at the seeded data."""
    for name in case.path_parameters or {}:
        if name in ids:
            case.path_parameters[name] = ids[name]
    if isinstance(case.body, dict) and "session_id" in case.body:
        case.body["session_id"] = ids["session_id"]


@schema.parametrize()
@schema.given(use_seeded_ids=st.booleans())
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    # One server and database serve all of an operation's examples, on purpose; and how
    # long generation takes depends on the machine, while the example count is fixed.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: Case, use_seeded_ids: bool, running_app: ThreadedServer, seeded: dict[str, str]
) -> None:
    if use_seeded_ids:
        aim_at_seeded(case, seeded)
    case.call_and_validate(base_url=running_app.url, checks=CHECKS, timeout=30)
