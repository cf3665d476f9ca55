"""Running the async services from a command."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console

from app.core.config import describe_database, get_settings
from app.core.errors import AppError
from app.runtime import Runtime

T = TypeVar("T")
console = Console()
errors = Console(stderr=True)


def run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Open a Runtime (database, model), run `work`, close it; AppErrors become exit code 1."""

    async def main() -> T:
        settings = get_settings()
        # On stderr, so it never mixes into output a pipe reads.
        errors.print(f"database: {describe_database(settings)}", style="dim", highlight=False)
        runtime = await Runtime.open(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except AppError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise SystemExit(1) from exc
