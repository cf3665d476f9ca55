from typing import Annotated

from fastapi import Depends

from app.jobs.service import JobService
from app.web.dependencies import RuntimeDep


async def get_job_service(runtime: RuntimeDep) -> JobService:
    return runtime.jobs


JobsDep = Annotated[JobService, Depends(get_job_service)]
