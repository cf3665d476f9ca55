"""The README runs as written: its curl and Python examples, in the order they appear,
against a served app (the fake upstream behind it), each checked for the status and the
fields the README documents next to it.

Conventions the README follows so its examples run as a sequence:
- `localhost:8000` is the server (here: the test's, on loopback);
- files it uploads (`manual.pdf`, `big.pdf`) sit in the working directory (here:
  generated PDFs of a product manual);
- `$DOC` and `$JOB` name the document and job the example before created (here: taken
  from that example's answer);
- `# 201` after a command is its status (`# 201, or 200 if unchanged`: any of them);
- `# {...}` lines after a command show its answer; every field named there must be in
  the real answer (values vary: ids, counts, scores).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.support.files import write_pdf
from tests.support.servers import ThreadedServer, app_server

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)
STATUS_MARK = "__STATUS__"
# Examples that need what a test cannot have: a real key, Docker, the quick start itself.
NOT_RUN = ("make run", "make test", "docker compose", "sk-... make", "ragstore info")


@dataclass
class Example:
    kind: str  # "curl", "cli" (a `$ ragstore ...` line) or "python"
    code: str
    statuses: set[int] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    # What a `$` command prints, as the README shows it.
    output: list[str] = field(default_factory=list)


def examples() -> list[Example]:
    """Every runnable example of the README, in order."""
    found: list[Example] = []
    for kind, body in BLOCK.findall(README.read_text()):
        if kind == "python":
            found.append(Example("python", body))
        else:
            found.extend(_curl_examples(body))
    return found


def _curl_examples(block: str) -> list[Example]:
    found: list[Example] = []
    lines = block.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            example = Example("cli", line.removeprefix("$ "))
            index += 1
            while index < len(lines) and not lines[index].startswith("$ "):
                example.output.append(lines[index])
                index += 1
            found.append(example)
            continue
        if not line.startswith("curl "):
            if line.startswith("#") and found:
                found[-1].fields |= _documented_fields(line)
            index += 1
            continue
        command = [line]
        # A command goes on while a line ends in `\` or a quote is open.
        while command[-1].endswith("\\") or "".join(command).count("'") % 2:
            index += 1
            command.append(lines[index])
        index += 1
        *rest, last = command
        last, comment = _split_comment(last)
        example = Example("curl", "\n".join([*rest, last]))
        example.statuses = {int(s) for s in re.findall(r"\b([1-5]\d\d)\b", comment)}
        found.append(example)
    return found


def _split_comment(line: str) -> tuple[str, str]:
    """A shell line and its trailing `# comment` (a `#` inside quotes is not one)."""
    quote = None
    for position, character in enumerate(line):
        if quote:
            quote = None if character == quote else quote
        elif character in "'\"":
            quote = character
        elif character == "#" and (position == 0 or line[position - 1].isspace()):
            return line[:position].rstrip(), line[position + 1 :]
    return line, ""


def _documented_fields(comment: str) -> set[str]:
    return set(re.findall(r'"([a-z_]+)"\s*:', comment))


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for item in value for k in _keys(item)}
    return set()


@pytest.fixture
def manuals(tmp_path: Path) -> Path:
    pages = [
        f"X200 manual, page {n}. To reset the device, hold the power button for ten "
        "seconds. The status light blinks twice when the reset is done."
        for n in range(1, 15)
    ]
    write_pdf(tmp_path / "manual.pdf", pages)
    write_pdf(tmp_path / "big.pdf", pages * 3)
    return tmp_path


def test_the_readme_examples_run_in_order(
    settings: Settings, manuals: Path, cli_env: dict[str, str]
) -> None:
    """Served with its worker, as `make run` serves, for the background-upload examples."""
    with app_server(settings.model_copy(update={"worker_in_process": True})) as server:
        # As a user would after `make run`: the examples begin once the server is ready.
        with httpx.Client(base_url=server.url) as client:
            for _ in range(600):
                if client.get("/api/ready").status_code == 200:
                    break
                time.sleep(0.1)
        _run_all(server, manuals, cli_env)


def test_the_contents_list_every_section() -> None:
    text = README.read_text()
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"\[([^\]]+)\]\(#([^)]+)\)", contents)
    body = text.split("## Quick start", 1)[1]
    headings = [
        title.replace("`", "")
        for title in ["Quick start", *re.findall(r"^#{2,3} (.+)$", body, flags=re.M)]
    ]

    assert [title for title, _ in listed] == headings


def _run_all(running_app: ThreadedServer, manuals: Path, cli_env: dict[str, str]) -> None:
    found = examples()
    assert len([e for e in found if e.kind == "curl"]) >= 15, "the README lost its examples"
    variables: dict[str, str] = {}
    for example in found:
        if any(marker in example.code for marker in NOT_RUN):
            continue
        if example.kind == "python":
            _run_python(example, manuals, cli_env, running_app.url)
            continue
        if example.kind == "cli":
            _run_cli(example, manuals, cli_env)
            continue
        status, body = _run_curl(example, running_app.url, manuals, variables)
        allowed = example.statuses or set(range(200, 300))
        assert status in allowed, f"{example.code}\n-> {status} {body[:500]}"
        answer = _json(body)
        if example.fields and answer is not None:
            missing = example.fields - _keys(answer)
            assert not missing, f"{example.code}\n-> fields {missing} missing from {body[:500]}"
        _remember(answer, variables)


def _run_curl(
    example: Example, url: str, folder: Path, variables: dict[str, str]
) -> tuple[int, str]:
    command = example.code.replace("localhost:8000", url.removeprefix("http://"))
    script = f'curl() {{ command curl -sS -w "\\n{STATUS_MARK}%{{http_code}}" "$@"; }}\n{command}'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{example.code}\n{result.stderr}"
    body, _, status = result.stdout.rpartition(STATUS_MARK)
    return int(status), body.strip()


def _run_cli(example: Example, folder: Path, env: dict[str, str]) -> None:
    """A `$` line as a user's shell runs it (`ragstore` on the PATH); each line shown
    must come out the same, or, where it holds an id or a count, with as many fields."""
    programs = [part.split()[0] for part in example.code.split("|")]
    missing = [program for program in programs if shutil.which(program, path=_path(env)) is None]
    if missing:
        print(f"not run (no {', '.join(missing)} here): {example.code}")
        return
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", example.code],
        cwd=folder,
        env={**env, "PATH": _path(env)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{example.code}\n{result.stderr[-2000:]}"
    printed = result.stdout.splitlines()
    assert len(printed) >= len(example.output), f"{example.code}\n{result.stdout}"
    for shown, actual in zip(example.output, printed, strict=False):
        if re.search(r"\d", shown):
            assert len(shown.split("\t")) == len(actual.split("\t")), (shown, actual)
        else:
            assert shown == actual, f"{example.code}: README shows {shown!r}, got {actual!r}"


def _path(env: dict[str, str]) -> str:
    return f"{Path(sys.executable).parent}:{env.get('PATH', os.defpath)}"


def _run_python(example: Example, folder: Path, env: dict[str, str], url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", example.code.replace("http://localhost:8000", url)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{example.code}\n{result.stderr[-3000:]}"


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _remember(answer: Any, variables: dict[str, str]) -> None:
    """$DOC and $JOB for the examples that follow."""
    if not isinstance(answer, dict):
        return
    if answer.get("job_id"):
        variables["JOB"] = str(answer["job_id"])
    if answer.get("document_id"):
        variables["DOC"] = str(answer["document_id"])
    elif "filename" in answer and answer.get("id"):
        variables["DOC"] = str(answer["id"])
