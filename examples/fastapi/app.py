# app.py
import hmac
import os

from fastapi import Depends, FastAPI, HTTPException

from jobs import monthly_report
from resque.aio import AsyncResque
from resque.contrib.fastapi import Resque

resque = Resque()  # RESQUE_REDIS, then REDIS_URL, then localhost
app = FastAPI(lifespan=resque.lifespan)


def is_admin(request):
    token = os.environ.get("ADMIN_TOKEN", "")
    given = request.headers.get("x-admin-token", "")
    return bool(token) and hmac.compare_digest(given, token)


resque.mount_dashboard(app, "/resque", auth=is_admin)


@app.post("/reports/{month}", status_code=202)
async def create_report(month: str, client: AsyncResque = Depends(resque)):
    job = await client.enqueue(monthly_report, month, currency="SEK")
    return {"job": job.id}


@app.get("/reports/jobs/{job_id}")
async def report(job_id: str, wait: float = 0, client: AsyncResque = Depends(resque)):
    job = await client.fetch(job_id)
    if job is None:
        raise HTTPException(404, "no such report")
    if wait:  # wait for the worker, on pub/sub (no polling)
        return {"status": "finished", "report": await job.result(timeout=wait)}
    return {"status": (await job.status()).name.lower()}
