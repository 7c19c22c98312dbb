"""The GPU engine of one host: model ids → loaded pipelines (via the memory LRU) and the batcher in front."""
from __future__ import annotations

import logging
import threading

import torch

from app.gpu import loading, tasks
from app.gpu.batching import Batcher
from app.gpu.memory import ModelCache
from app.gpu.validation import Job, Limits, validate

log = logging.getLogger(__name__)


def memory_budget_bytes(settings, placement: loading.Placement) -> int:
    """The configured budget, or 90% of the GPU's memory (half the RAM on CPU) when it is 0."""
    if settings.gpu_memory_budget_mb:
        return settings.gpu_memory_budget_mb * 1024 * 1024
    if placement.is_cuda:
        return int(torch.cuda.get_device_properties(placement.device).total_memory * 0.9)
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.5)


class Engine:
    """Validates, queues, batches and runs generation jobs for the models this host serves."""

    def __init__(self, settings):
        self.settings = settings
        self.models = list(dict.fromkeys(settings.gpu_models))
        self.placement = loading.placement_from_settings(settings)
        self.limits = Limits(settings.gpu_max_pixels, settings.gpu_max_steps, float(settings.gpu_max_guidance),
                             settings.gpu_max_images, settings.gpu_max_prompt_chars, settings.gpu_max_frames)
        self.cache = ModelCache(self._load, memory_budget_bytes(settings, self.placement),
                                settings.gpu_idle_ttl_seconds, on_unload=self._forget)
        self.batcher = Batcher(self._run, settings.gpu_max_batch_size, settings.gpu_batch_wait_ms,
                               settings.gpu_queue_limit)
        self.preload_error: str | None = None
        self.preloaded = threading.Event()

    def _load(self, model_id: str) -> loading.LoadedModel:
        return loading.load_model(model_id, self.settings, self.placement)

    def _forget(self, model: loading.LoadedModel) -> None:
        tasks.forget(model)
        if self.placement.is_cuda:
            torch.cuda.empty_cache()

    def _run(self, jobs: list[Job]) -> list[list]:
        with self.cache.lease(jobs[0].model) as model:
            return tasks.run(model, jobs, self.batcher.max_batch)

    def validate(self, task: str, body) -> Job:
        """Check a request for a task (InvalidField names the bad field)."""
        return validate(task, body, self.models, self.limits)

    def submit(self, job: Job):
        """Queue a job; the future resolves to (images, requests in its batch)."""
        return self.batcher.submit(job)

    def start(self) -> None:
        """Preload the configured models in the background and start the idle reaper."""
        self.cache.start_reaper()
        threading.Thread(target=self._preload, name="gpu-preload", daemon=True).start()

    def _preload(self) -> None:
        try:
            for model_id in self.settings.gpu_preload_models:
                if model_id in self.models:
                    with self.cache.lease(model_id):
                        pass
        except Exception as exc:  # readiness reports it; the host still serves other models
            log.exception("preloading failed")
            self.preload_error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self.preloaded.set()

    def check_ready(self) -> None:
        """Readiness: the preloaded models are loaded (raises with the reason otherwise)."""
        if not self.preloaded.is_set():
            raise RuntimeError("still loading the preloaded models")
        if self.preload_error:
            raise RuntimeError(self.preload_error)

    def health(self) -> dict:
        """What the proxy routes on: loaded models, memory, queue depth, in-flight, batches served."""
        loaded = self.cache.snapshot()
        return {
            "status": "ok",
            "device": str(self.placement.device),
            "dtype": str(self.placement.dtype).replace("torch.", ""),
            "models": self.models,
            "loaded_models": [entry["model"] for entry in loaded],
            "loaded": loaded,
            "memory": {"used_bytes": self.cache.used_bytes(), "budget_bytes": self.cache.budget_bytes},
            "queue_depth": self.batcher.queue_depth,
            "queue_limit": self.batcher.queue_limit,
            "in_flight": self.batcher.in_flight,
            "batches_served": self.batcher.batches_served,
            "images_served": self.batcher.images_served,
            "max_batch_size": self.batcher.max_batch,
            "evictions": [{"model": m, "reason": r} for m, r in self.cache.evictions[-10:]],
            "ready": self.preloaded.is_set() and not self.preload_error,
        }
