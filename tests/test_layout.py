"""The seams of the layout, checked on the source: which module may import what.

These are the rules the README's "Development" section states; each test names
the files that break one, so a change that crosses a seam fails here first.
"""

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter

from app.main import create_app
from tests.support.settings import base_settings

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
DOMAINS = (
    "chat",
    "cli",
    "collection",
    "compat",
    "document",
    "embeddings",
    "health",
    "ingestion",
    "jobs",
    "llm",
    "processing",
    "search",
    "web",
)
WEB_FRAMEWORKS = ("fastapi", "starlette", "sse_starlette")
ORIGINAL_PATHS = (
    "/api/upload-document",
    "/api/upload-pdf",
    "/api/rag-chat",
    "/api/chat",
    "/api/search",
    "/api/sessions",
    "/api/session/",
    "/api/documents/",
)
MAX_PARAMETERS = 6


def _python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if ".venv" not in path.parts)


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_core_imports_no_domain_nor_the_runtime() -> None:
    forbidden = tuple(f"app.{name}" for name in (*DOMAINS, "runtime", "main", "db"))
    crossing = {
        _relative(path): name
        for path in _python_files(APP / "core")
        for name in _imports(path)
        if name.startswith(forbidden)
    }
    assert crossing == {}


def test_services_repositories_and_lower_layers_know_no_web_framework() -> None:
    checked = [
        path
        for path in _python_files(APP)
        if path.name in ("service.py", "repository.py")
        or path.is_relative_to(APP / "processing")
        or path.is_relative_to(APP / "embeddings")
        or (path.is_relative_to(APP / "db") and path.name != "dependencies.py")
    ]
    assert len(checked) > 20
    crossing = {
        _relative(path): name
        for path in checked
        for name in _imports(path)
        if name.split(".")[0] in WEB_FRAMEWORKS
    }
    assert crossing == {}


def _declared_paths() -> dict[str, set[str]]:
    """Each path the app serves, with the modules whose routers declare it."""
    declared: dict[str, set[str]] = {}
    for path in _python_files(APP):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        # Each endpoints module names its own router `router` (main.py imports them as others).
        for name, value in vars(module).items():
            if name == "router" and isinstance(value, APIRouter):
                for route in value.routes:
                    full = getattr(route, "path", "")
                    declared.setdefault(full, set()).add(module.__name__)
    return declared


def test_the_original_apps_paths_are_declared_only_in_compat() -> None:
    served = create_app(base_settings()).openapi()["paths"]
    declared = _declared_paths()
    original = [path for path in served if path.startswith(ORIGINAL_PATHS)]
    assert len(original) == 8
    assert {path: declared[path] for path in original} == {
        path: {"app.compat.endpoints"} for path in original
    }


def _too_many_parameters(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            names = [
                a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
            ]
            count = len([name for name in names if name not in ("self", "cls")])
            if count > MAX_PARAMETERS:
                yield f"{_relative(path)}:{node.lineno} {node.name} ({count})"


def test_no_function_takes_an_argument_clump() -> None:
    """Values that travel together are one dataclass. Routes are exempt: FastAPI injects
    their dependencies as parameters."""
    checked = [path for path in _python_files(APP) if path.name != "endpoints.py"]
    offenders = [line for path in checked for line in _too_many_parameters(path)]
    assert offenders == []


def test_no_test_module_imports_another_or_the_conftest() -> None:
    tests = ROOT / "tests"
    offenders = {
        _relative(path): name
        for path in _python_files(tests)
        for name in _imports(path)
        if name.startswith("tests.")
        and (name.rsplit(".", 1)[-1].startswith("test_") or name == "tests.conftest")
    }
    assert offenders == {}


def test_benchmarks_write_documents_and_chunks_through_the_repositories() -> None:
    offenders = [
        _relative(path)
        for path in _python_files(ROOT / "bench")
        if any(
            statement in " ".join(path.read_text().upper().split())
            for statement in ("INSERT INTO DOCUMENTS", "INSERT INTO CHUNKS")
        )
    ]
    assert offenders == []
