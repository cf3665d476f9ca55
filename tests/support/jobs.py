import asyncio
from typing import Any

import httpx


async def wait_for_job(
    client: httpx.AsyncClient, job_id: str, states: tuple[str, ...] = ("succeeded", "failed")
) -> dict[str, Any]:
    """The job as the API shows it, once it reaches one of `states` (60 s at most)."""
    for _ in range(600):
        job = (await client.get(f"/api/jobs/{job_id}")).json()
        if job["state"] in states:
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"job {job_id} never reached {states}")
