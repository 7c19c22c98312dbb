"""Loaded models in an LRU bounded by a memory budget (parameter bytes); idle models are unloaded after a TTL."""
from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

log = logging.getLogger(__name__)


@dataclass
class Entry:
    """One loaded model with its size and use."""

    model: object
    nbytes: int
    last_used: float
    in_use: int = 0


class ModelCache:
    """LRU of loaded models: loading one more evicts the least recently used until the budget holds."""

    def __init__(self, loader: Callable[[str], object], budget_bytes: int, idle_ttl_s: float = 0,
                 on_unload: Callable[[object], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self._loader = loader
        self.budget_bytes = budget_bytes
        self.idle_ttl_s = idle_ttl_s
        self._on_unload = on_unload
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._known_sizes: dict[str, int] = {}
        self._lock = threading.RLock()
        self.evictions: list[tuple[str, str]] = []  # (model id, reason), newest last
        self._stop = threading.Event()

    @contextmanager
    def lease(self, model_id: str) -> Iterator[object]:
        """The loaded model, loading it (and evicting others) if needed; it cannot be unloaded while leased."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is None:
                entry = self._load(model_id)
            self._entries.move_to_end(model_id)
            entry.in_use += 1
            entry.last_used = self._clock()
        try:
            yield entry.model
        finally:
            with self._lock:
                entry.in_use -= 1
                entry.last_used = self._clock()

    def _load(self, model_id: str) -> Entry:
        expected = self._known_sizes.get(model_id, 0)
        self._evict_until(expected, keep=model_id)  # free room first when the size is known from before
        model = self._loader(model_id)
        nbytes = model.nbytes()
        self._known_sizes[model_id] = nbytes
        entry = Entry(model, nbytes, self._clock())
        self._entries[model_id] = entry
        self._evict_until(0, keep=model_id)
        if self.used_bytes() > self.budget_bytes:
            log.warning("model %s (%d bytes) alone exceeds the memory budget of %d bytes",
                        model_id, nbytes, self.budget_bytes)
        return entry

    def _evict_until(self, incoming: int, keep: str) -> None:
        for model_id in list(self._entries):
            if self.used_bytes() + incoming <= self.budget_bytes:
                return
            entry = self._entries[model_id]
            if model_id != keep and entry.in_use == 0:
                self._unload(model_id, "memory budget")

    def _unload(self, model_id: str, reason: str) -> None:
        entry = self._entries.pop(model_id)
        self.evictions.append((model_id, reason))
        self.evictions[:] = self.evictions[-50:]
        log.info("unloaded model %s (%s)", model_id, reason)
        if self._on_unload:
            self._on_unload(entry.model)
        del entry
        gc.collect()

    def unload_idle(self) -> list[str]:
        """Unload models unused for longer than the idle TTL; returns their ids."""
        if not self.idle_ttl_s:
            return []
        now = self._clock()
        with self._lock:
            idle = [m for m, e in self._entries.items() if e.in_use == 0 and now - e.last_used > self.idle_ttl_s]
            for model_id in idle:
                self._unload(model_id, "idle ttl")
        return idle

    def used_bytes(self) -> int:
        """Bytes held by loaded models."""
        return sum(entry.nbytes for entry in list(self._entries.values()))

    def snapshot(self) -> list[dict]:
        """Loaded models, least recently used first."""
        now = self._clock()
        # No lock: health must answer while a long load holds it; copying the items is atomic enough.
        return [{"model": model_id, "bytes": e.nbytes, "idle_s": round(now - e.last_used, 3), "in_use": e.in_use}
                for model_id, e in list(self._entries.items())]

    def start_reaper(self) -> None:
        """Check for idle models in a daemon thread (only when an idle TTL is set)."""
        if not self.idle_ttl_s:
            return
        interval = max(0.2, min(self.idle_ttl_s / 4, 30.0))

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.unload_idle()
                except Exception:  # keep reaping; one failure must not stop scale-to-zero
                    log.exception("idle unload failed")

        threading.Thread(target=loop, name="gpu-idle-reaper", daemon=True).start()

    def stop(self) -> None:
        """Stop the reaper thread."""
        self._stop.set()
