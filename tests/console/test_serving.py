"""How the console's files are served: from the package, as they are, under a content
security policy that lets them run and nothing else."""

import re

import httpx

from app.console.endpoints import STATIC
from app.core.middleware import CONSOLE_CONTENT_SECURITY_POLICY


async def test_the_page_and_its_files_are_served_under_the_consoles_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    script = await client.get("/console/js/main.js")
    style = await client.get("/console/css/console.css")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    for answer in (page, script, style):
        assert answer.headers["content-security-policy"] == CONSOLE_CONTENT_SECURITY_POLICY
        assert answer.headers["x-frame-options"] == "DENY"
    api = await client.get("/api/collections")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_every_module_the_page_imports_is_served(client: httpx.AsyncClient) -> None:
    """The modules reach each other by relative imports; a missing one would break the
    page only in a browser."""
    modules = sorted(STATIC.glob("js/**/*.js"))
    assert modules
    for module in modules:
        for imported in re.findall(r'^import .* from "(\.[^"]+)";', module.read_text(), re.M):
            target = (module.parent / imported).resolve()
            assert target.is_file(), f"{module.name} imports {imported}"
        relative = module.relative_to(STATIC).as_posix()
        assert (await client.get(f"/console/{relative}")).status_code == 200, relative


def test_the_page_has_no_inline_script_or_style() -> None:
    """The policy forbids both: the browser would refuse them silently."""
    page = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert "<style" not in page
    assert not re.search(r"\son[a-z]+=", page)
