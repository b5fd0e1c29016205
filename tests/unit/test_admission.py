"""API_CONCURRENCY: data answers beyond the limit wait in arrival order; other paths never wait."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from logpulse.api.admission import AdmissionLimit


class SlowApp:
    """An ASGI app that records when each request starts and how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.append(scope["path"] + "?" + scope["query_string"].decode())
        await self.release.wait()
        self.running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _fire(limit: int, paths: list[str]) -> tuple[SlowApp, list[str]]:
    """Send `paths` in order; (the app, the requests that had started before any could finish)."""
    inner = SlowApp()
    transport = httpx.ASGITransport(app=AdmissionLimit(inner, limit))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        tasks = []
        for path in paths:
            tasks.append(asyncio.create_task(client.get(path)))
            await asyncio.sleep(0.005)  # a known arrival order
        await asyncio.sleep(0.05)
        waiting = inner.started.copy()
        inner.release.set()
        answers = await asyncio.gather(*tasks)
    assert all(a.status_code == 200 for a in answers)
    return inner, waiting


def test_data_answers_beyond_the_limit_wait_in_arrival_order() -> None:
    paths = [f"/customers/c/stats?n={i}" for i in range(10)]
    inner, first = asyncio.run(_fire(3, paths))
    assert inner.peak == 3 and first == paths[:3]
    assert inner.started == paths  # every request answered, the waiting ones started in arrival order


def test_other_paths_and_no_limit_never_wait() -> None:
    free = ["/health", "/metrics", "/freshness", "/dashboard/customers/c", "/static/app.js"]
    inner, first = asyncio.run(_fire(1, ["/stats?n=0", "/stats?n=1", *free]))
    assert first == ["/stats?n=0", *(p + "?" for p in free)]  # /stats?n=1 waits, nothing else does
    assert inner.peak == 1 + len(free)
    assert asyncio.run(_fire(0, [f"/stats?n={i}" for i in range(6)]))[0].peak == 6


@pytest.mark.parametrize("limit", [1, 2])
def test_peak_never_exceeds_the_limit(limit: int) -> None:
    assert asyncio.run(_fire(limit, [f"/anomalies?n={i}" for i in range(5)]))[0].peak == limit
