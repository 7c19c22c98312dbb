"""The memory budget evicts the least recently used model; the idle TTL unloads a model (scale to zero)."""
from __future__ import annotations

import time

import pytest

from tests.gpu.conftest import Signed, start_gpu_host

SMALL = {"prompt": "a quiet harbour", "width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    """Three tiny pipelines saved as local diffusers folders (about 5.4 MB of parameters each)."""
    from diffusers import StableDiffusionPipeline

    from app.gpu import tiny

    folders = []
    for seed in (1, 2, 3):
        folder = tmp_path_factory.mktemp(f"model{seed}")
        StableDiffusionPipeline(**tiny.base_components(seed)).save_pretrained(str(folder))
        folders.append(str(folder))
    return folders


@pytest.fixture(scope="module")
def memory_hosts(tmp_path_factory, local_models):
    """A host whose 12 MB budget holds two of the three local models, and a host with a 2 s idle TTL."""
    budget = start_gpu_host("budget", tmp_path_factory, gpu_models=local_models, gpu_preload_models=[],
                            gpu_memory_budget_mb=12)
    ttl = start_gpu_host("ttl", tmp_path_factory, gpu_idle_ttl_seconds=2)
    try:
        budget.wait_ready("/readyz")
        ttl.wait_ready("/readyz")
        yield {"budget": budget, "ttl": ttl}
    finally:
        budget.stop()
        ttl.stop()


def test_loading_one_more_model_evicts_the_least_recently_used(memory_hosts, local_models):
    host = Signed(memory_hosts["budget"].url)
    first, second, third = local_models
    assert host.health()["loaded_models"] == []
    for model in (first, second, first):  # `second` is now the least recently used
        assert host.post("/gpu/v1/txt2img", {**SMALL, "model": model}).status_code == 200
    assert host.health()["loaded_models"] == [second, first]

    assert host.post("/gpu/v1/txt2img", {**SMALL, "model": third}).status_code == 200
    health = host.health()
    assert health["loaded_models"] == [first, third]
    assert health["evictions"][-1] == {"model": second, "reason": "memory budget"}
    assert health["memory"]["used_bytes"] <= health["memory"]["budget_bytes"] == 12 * 1024 * 1024

    # The evicted model still serves: it loads again and evicts the next least recently used.
    assert host.post("/gpu/v1/txt2img", {**SMALL, "model": second}).status_code == 200
    assert host.health()["loaded_models"] == [third, second]
    models = host.get("/gpu/v1/models").json()["models"]
    assert {m["id"]: m["loaded"] for m in models} == {first: False, second: True, third: True}


def test_a_model_idle_longer_than_the_ttl_is_unloaded_and_loads_again_on_demand(memory_hosts):
    host = Signed(memory_hosts["ttl"].url)
    assert host.post("/gpu/v1/txt2img", {**SMALL, "seed": 9}).status_code == 200
    assert host.health()["loaded_models"] == ["tiny"]
    deadline = time.monotonic() + 20
    while host.health()["loaded_models"] and time.monotonic() < deadline:
        time.sleep(0.25)
    health = host.health()
    assert health["loaded_models"] == [] and health["memory"]["used_bytes"] == 0
    assert health["evictions"][-1] == {"model": "tiny", "reason": "idle ttl"}

    again = host.post("/gpu/v1/txt2img", {**SMALL, "seed": 9})
    assert again.status_code == 200
    assert host.health()["loaded_models"] == ["tiny"]
