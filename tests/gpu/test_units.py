"""In-process checks of signing, scheduler names, validation and the batcher's grouping."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from app.gpu.batching import Batcher, QueueFull
from app.gpu.schedulers import canonical_scheduler
from app.gpu.validation import InvalidField, Limits, validate
from app.gpu_signing import SignatureError, sign, verify


def test_signature_covers_method_path_timestamp_and_body():
    headers = sign("s3cret", "POST", "/gpu/v1/txt2img", b'{"prompt": "x"}', timestamp=1_000_000)
    verify("s3cret", "POST", "/gpu/v1/txt2img", b'{"prompt": "x"}', headers, now=1_000_030)
    for method, path, body, secret, now in [
        ("GET", "/gpu/v1/txt2img", b'{"prompt": "x"}', "s3cret", 1_000_000),
        ("POST", "/gpu/v1/img2img", b'{"prompt": "x"}', "s3cret", 1_000_000),
        ("POST", "/gpu/v1/txt2img", b'{"prompt": "y"}', "s3cret", 1_000_000),
        ("POST", "/gpu/v1/txt2img", b'{"prompt": "x"}', "other", 1_000_000),
        ("POST", "/gpu/v1/txt2img", b'{"prompt": "x"}', "s3cret", 1_000_061),  # outside the 60 s window
    ]:
        with pytest.raises(SignatureError):
            verify(secret, method, path, body, headers, now=now)


@pytest.mark.parametrize("name, canonical", [
    (None, "ddim"), ("DDIM", "ddim"), ("Euler", "euler"), ("Euler a", "euler_a"), ("euler_ancestral", "euler_a"),
    ("DPM++ 2M", "dpmpp_2m"), ("DPM++ 2M Karras", "dpmpp_2m_karras"), ("dpm++ 2m karras", "dpmpp_2m_karras"),
    ("UniPC", "unipc"), ("PLMS", "pndm"), ("LMS", "lms"), ("EulerAncestralDiscreteScheduler", "euler_a"),
])
def test_scheduler_names_from_diffusers_and_automatic1111_clients(name, canonical):
    assert canonical_scheduler(name) == canonical


def test_validation_defaults_and_batch_key():
    job = validate("txt2img", {"prompt": "x", "seed": 7, "n": 3, "scheduler": "Euler a"}, ["tiny"], Limits())
    assert job.seeds == [7, 8, 9] and job.model == "tiny"
    assert job.params["width"] == job.params["height"] == 512
    other = validate("txt2img", {"prompt": "y", "seed": 1, "scheduler": "euler_a"}, ["tiny"], Limits())
    assert job.batch_key() == other.batch_key()  # different prompts and seeds still batch together
    steps = validate("txt2img", {"prompt": "y", "steps": 30}, ["tiny"], Limits())
    assert steps.batch_key() != job.batch_key()
    with pytest.raises(InvalidField) as error:
        validate("txt2img", {"prompt": "x", "width": 1024, "height": 1032}, ["tiny"], Limits())
    assert error.value.field == "width"


def test_batcher_merges_compatible_jobs_and_refuses_past_the_queue_limit():
    calls: list[list] = []
    release = threading.Event()

    def runner(jobs):
        release.wait(5)
        calls.append([job.seeds[0] for job in jobs])
        return [[seed] for seed in (job.seeds[0] for job in jobs)]

    batcher = Batcher(runner, max_batch=4, wait_ms=50, queue_limit=6)
    jobs = [validate("txt2img", {"prompt": "x", "seed": s, "width": 64, "height": 64}, ["tiny"], Limits())
            for s in range(7)]
    futures = [batcher.submit(jobs[0])]
    time.sleep(0.2)  # the first job is now running (blocked), the rest queue up
    futures += [batcher.submit(job) for job in jobs[1:7]]
    with pytest.raises(QueueFull):
        batcher.submit(jobs[0])
    release.set()
    results = [future.result(5) for future in futures]
    assert [images for images, _ in results] == [[s] for s in range(7)]
    assert calls == [[0], [1, 2, 3, 4], [5, 6]]
    batcher.stop()


def test_proxy_and_gpu_client_never_import_torch():
    code = ("import sys, proxy, app.services.gpu_client, app.gpu_signing; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"ATELIER_ENVIRONMENT": "testing", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_proxy_routes_to_hosts_serving_the_model_preferring_those_that_hold_it(monkeypatch):
    monkeypatch.setenv("ATELIER_ENVIRONMENT", "testing")
    import proxy
    from app.config import load_settings

    pool = proxy.HostPool(load_settings({"environment": "testing", "server_type": "cpu"}, environ={}),
                          proxy.ProxyMetrics())
    cold = proxy.Host("http://cold", healthy=True, served_models=frozenset({"tiny", "sd15"}))
    warm = [proxy.Host(f"http://warm{i}", healthy=True, served_models=frozenset({"tiny", "sd15"}),
                       loaded_models=frozenset({"sd15"})) for i in range(2)]
    other = proxy.Host("http://other", healthy=True, served_models=frozenset({"tiny"}), loaded_models=frozenset({"tiny"}))
    pool.hosts = {h.url: h for h in [cold, *warm, other]}

    picks = [pool.choose("sd15", set()).url for _ in range(4)]
    assert sorted(picks) == ["http://warm0", "http://warm0", "http://warm1", "http://warm1"]  # round-robin
    assert pool.choose("sd15", {"http://warm0", "http://warm1"}) is cold  # then a host that can load it
    assert pool.choose("sd15", {"http://warm0", "http://warm1", "http://cold"}) is None
    pool.eject(warm[0], "answered 500")
    assert {pool.choose("sd15", set()).url for _ in range(4)} == {"http://warm1"}
    assert 0 < warm[0].ejected_until - time.monotonic() <= pool.settings.proxy_eject_seconds
