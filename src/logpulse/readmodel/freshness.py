"""How fresh the stored data is, for the dashboard's live status: one cheap query shared by all pages.

The processor's sink writes a `writes` mark after InfluxDB acknowledged data (see `storage.points`):
the mark's time is when the write was acknowledged, `max_time` the newest request time in it, and
`backlog_bytes` how many bytes of its log files the writing process had not read yet. So

    last_write    = time of the newest mark                              -> "data last updated"
    newest_data   = newest `max_time` written in the last WINDOW_S       -> the newest request stored
    backlog_bytes = largest unread backlog in the newest mark of each writer active within
                    RECENT_S of last_write (one process's workers report the same files)
    behind        = backlog_bytes > BEHIND_AFTER_BYTES                   -> "processor behind"

Bytes, not time: a caught-up processor tailing a quiet log writes old request times too, and only
the backlog tells "the log has nothing newer" from "the processor has not read it yet". An idle
processor writes no marks: `last_write` ages and the last backlog stays (a processor that died with
unread lines keeps saying so). `lag_s` = last_write - newest_data is kept as information.

Pages poll `GET /freshness` every few seconds; the answer is memoized for MEMO_S, so any number of open
pages cost InfluxDB at most one small request (three statements over one hour of marks) per MEMO_S.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from logpulse.readmodel import influxql
from logpulse.readmodel.schemas import Freshness
from logpulse.storage.influx import AsyncInfluxQuery, series_rows

WINDOW_S = 3600
RECENT_S = 60
BEHIND_AFTER_BYTES = 1 << 20  # 1 MiB: well under a second of reading; less is the race with a live append
MEMO_S = 1.0
NS = 1_000_000_000


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS, dt.UTC).isoformat(timespec="milliseconds")


class FreshnessProbe:
    """Reads the newest `writes` marks; one query per MEMO_S however many pages ask."""

    def __init__(self, client: AsyncInfluxQuery) -> None:
        self._client = client
        self._answer: Freshness | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Freshness:
        async with self._lock:
            if self._answer is None or time.monotonic() - self._at >= MEMO_S:
                self._answer = await self._compute()
                self._at = time.monotonic()
            return self._answer

    async def _compute(self) -> Freshness:
        now_ns = time.time_ns()
        last, newest, backlogs = await self._client.query(influxql.freshness(now_ns - WINDOW_S * NS))
        last_rows, newest_rows, backlog_rows = series_rows(last), series_rows(newest), series_rows(backlogs)
        if not last_rows:  # nothing in the last hour: the newest mark of all, if any
            last_rows = newest_rows = series_rows((await self._client.query(influxql.freshness(None)))[0])
        if not last_rows:
            return Freshness(
                last_write=None, newest_data=None, lag_s=None, backlog_bytes=None, behind=False, checked_at=_iso(now_ns)
            )
        write_ns = int(last_rows[0][1]["time"])
        data_ns = int((newest_rows or last_rows)[0][1]["max_time"])
        recent = [
            int(row["backlog"])
            for _, row in backlog_rows
            if row.get("backlog") is not None and int(row["time"]) >= write_ns - RECENT_S * NS
        ]
        backlog = max(recent) if recent else None
        return Freshness(
            last_write=_iso(write_ns),
            newest_data=_iso(data_ns),
            lag_s=round(max(0.0, (write_ns - data_ns) / NS), 3),
            backlog_bytes=backlog,
            behind=backlog is not None and backlog > BEHIND_AFTER_BYTES,
            checked_at=_iso(now_ns),
        )
