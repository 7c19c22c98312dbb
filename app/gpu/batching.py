"""Dynamic batching: compatible requests that arrive together share one pipeline call."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from app.gpu.validation import Job

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """The host already holds as many requests as it is allowed to queue."""


@dataclass
class Pending:
    """A queued job and the future its HTTP request waits on."""

    job: Job
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class Batcher:
    """One worker thread runs the GPU; requests queue, and compatible ones are merged up to max_batch images."""

    def __init__(self, runner: Callable[[list[Job]], list], max_batch: int = 8, wait_ms: float = 10,
                 queue_limit: int = 64):
        self._runner = runner
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0.0, wait_ms / 1000)
        self.queue_limit = queue_limit
        self._pending: list[Pending] = []
        self._cond = threading.Condition()
        self._stopped = False
        self.in_flight = 0
        self.batches_served = 0
        self.images_served = 0
        self.largest_batch = 0
        self._thread = threading.Thread(target=self._loop, name="gpu-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future:
        """Queue a job; raises QueueFull at once when the queue is at its limit."""
        pending = Pending(job)
        with self._cond:
            if len(self._pending) >= self.queue_limit:
                raise QueueFull(f"the queue holds {len(self._pending)} requests")
            self._pending.append(pending)
            self._cond.notify()
        return pending.future

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the GPU."""
        return len(self._pending)

    def stop(self) -> None:
        """Let the worker thread finish."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _take_batch(self) -> list[Pending] | None:
        with self._cond:
            while not self._pending and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            head = self._pending.pop(0)
            batch, key = [head], head.job.batch_key()
            if key is None or self.max_batch == 1:
                return batch
            images = len(head.job.seeds)
            deadline = time.monotonic() + self.wait_s
            while True:
                for pending in list(self._pending):
                    size = len(pending.job.seeds)
                    if pending.job.batch_key() == key and images + size <= self.max_batch:
                        self._pending.remove(pending)
                        batch.append(pending)
                        images += size
                remaining = deadline - time.monotonic()
                if images >= self.max_batch or remaining <= 0:
                    return batch
                self._cond.wait(remaining)

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self.in_flight = len(batch)
            try:
                results = self._runner([p.job for p in batch])
            except BaseException as exc:  # every waiter must hear about the failure
                for pending in batch:
                    pending.future.set_exception(exc)
            else:
                for pending, images in zip(batch, results):
                    pending.future.set_result((images, len(batch)))
                self.batches_served += 1
                count = sum(len(p.job.seeds) for p in batch)
                self.images_served += count
                self.largest_batch = max(self.largest_batch, count)
            finally:
                self.in_flight = 0
