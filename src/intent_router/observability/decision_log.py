"""The decision log: one JSON row per request, written off the request path.

:meth:`DecisionLog.write` never blocks and never raises: it puts the row on a bounded
queue, or drops it and counts the drop (``intent_router_decision_log_dropped_total``).
One writer task drains the queue and appends the rows in a worker thread; the file is
rotated by size (``PATH`` → ``PATH.1`` … ``PATH.<keep>``, the oldest deleted).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from intent_router.observability.metrics import Metrics

log = logging.getLogger(__name__)
Row = dict[str, Any]


class RotatingFile:
    """Appends lines to ``path``; past ``max_bytes`` it shifts the files and starts anew."""

    def __init__(self, path: Path, *, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep

    def append(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(lines).encode("utf-8")
        size = self.path.stat().st_size if self.path.exists() else 0
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        with self.path.open("ab") as file:
            file.write(data)

    def _rotate(self) -> None:
        if self.keep <= 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))


class DecisionLog:
    """A bounded queue of rows and the task that writes them; owned by the lifespan."""

    def __init__(
        self,
        path: Path,
        metrics: Metrics,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        keep: int = 5,
        max_queue: int = 10_000,
    ) -> None:
        self.file = RotatingFile(path, max_bytes=max_bytes, keep=keep)
        self.metrics = metrics
        self.queue: asyncio.Queue[Row | None] = asyncio.Queue(maxsize=max_queue)  # None: stop
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="decision-log-writer")

    def write(self, row: Row) -> None:
        """Queue ``row`` for writing; when the queue is full, drop it and count the drop."""
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1
            self.metrics.decision_log_dropped.inc()

    async def _run(self) -> None:
        stop = False
        while not stop:
            taken = [await self.queue.get()]
            while not self.queue.empty():
                taken.append(self.queue.get_nowait())
            rows = [row for row in taken if row is not None]
            stop = len(rows) < len(taken)
            if rows:
                await self._flush(rows)

    async def _flush(self, rows: list[Row]) -> None:
        lines = [json.dumps(row, separators=(",", ":"), default=str) + "\n" for row in rows]
        try:
            await asyncio.to_thread(self.file.append, lines)
        except OSError as exc:
            log.error("decision log: %d rows not written: %s", len(rows), exc)

    async def aclose(self) -> None:
        """Write what is queued, then stop the writer."""
        task, self._task = self._task, None
        if task is None:
            return
        await self.queue.put(None)
        await task
