"""What a command prints: a table for people, plain lines for pipes, JSON on request.

At a terminal, results are rich tables. When stdout is a pipe or a file they are
tab-separated lines with a header, nothing wrapped or cut (ids and paths stay
whole, so `grep` and `cut -f` work). `--json` prints one JSON document instead.
Progress and the "database:" line go to stderr, so they never mix into either.
"""

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.runtime import console

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def emit_json(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, default=str, indent=2))


def emit_rows(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    caption: str | None = None,
) -> None:
    """A table at a terminal; tab-separated lines (header first) anywhere else."""
    if not console.is_terminal:
        typer.echo("\t".join(columns))
        for row in rows:
            typer.echo("\t".join(_cell(value) for value in row))
        return
    table = Table(title=title, caption=caption)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(value) for value in row))
    console.print(table)


def _cell(value: object) -> str:
    """One line per row: tabs and line breaks inside a value become spaces."""
    return " ".join(str(value).split()) if value is not None else ""
