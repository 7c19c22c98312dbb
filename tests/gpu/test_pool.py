"""GPU hosts behind a real proxy process: routing, failover, signatures, validation, batching, determinism."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from app.gpu_signing import sign
from tests.gpu.conftest import SECRET, Process, Signed, base_env, decode_png, png_base64

SMALL = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "steps": 2, "model": "tiny"}


def _proxy_hosts(pool) -> dict[str, dict]:
    return {h["url"]: h for h in requests.get(pool["proxy"].url + "/healthz", timeout=10).json()["hosts"]}


def test_proxy_reads_hosts_from_config_and_the_api_hosts_table(pool):
    hosts = _proxy_hosts(pool)
    expected = {pool[name].url for name in ("host_a", "host_b", "host_c", "busy")}
    assert set(hosts) == expected  # the disabled api_hosts row is left out
    assert all("tiny" in hosts[url]["loaded_models"] for url in expected)


def test_unsigned_stale_and_tampered_requests_get_401(pool):
    for base in (pool["proxy"].url, pool["host_a"].url):
        body = json.dumps(SMALL).encode()
        unsigned = requests.post(base + "/gpu/v1/txt2img", data=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        assert unsigned.json()["error"]["code"] == "bad_signature"

        headers = {**sign(SECRET, "POST", "/gpu/v1/txt2img", body), "Content-Type": "application/json"}
        tampered = body.replace(b"lighthouse", b"submarine!")
        assert requests.post(base + "/gpu/v1/txt2img", data=tampered, headers=headers).status_code == 401

        stale = {**sign(SECRET, "POST", "/gpu/v1/txt2img", body, timestamp=int(time.time()) - 120),
                 "Content-Type": "application/json"}
        response = requests.post(base + "/gpu/v1/txt2img", data=body, headers=stale)
        assert response.status_code == 401 and "stale" in response.json()["error"]["message"]

        wrong_secret = Signed(base, secret="not-the-secret").post("/gpu/v1/txt2img", SMALL)
        assert wrong_secret.status_code == 401
        assert requests.get(base + "/gpu/v1/health").status_code == 401


@pytest.mark.parametrize("task, change, field", [
    ("txt2img", {"width": 65}, "width"),
    ("txt2img", {"height": 2048, "width": 2048}, "width"),
    ("txt2img", {"steps": 0}, "steps"),
    ("txt2img", {"steps": 1000}, "steps"),
    ("txt2img", {"guidance": 99}, "guidance"),
    ("txt2img", {"prompt": "x" * 5000}, "prompt"),
    ("txt2img", {"prompt": ""}, "prompt"),
    ("txt2img", {"n": 0}, "n"),
    ("txt2img", {"n": 99}, "n"),
    ("txt2img", {"model": "stable-diffusion-9000"}, "model"),
    ("txt2img", {"scheduler": "warp drive"}, "scheduler"),
    ("txt2img", {"seed": -1}, "seed"),
    ("img2img", {"image": png_base64(64, 64), "strength": 0}, "strength"),
    ("img2img", {"image": png_base64(64, 64), "strength": 1.5}, "strength"),
    ("img2img", {"image": png_base64(64, 64), "strength": 0.3, "steps": 2}, "strength"),  # 0 denoising steps
    ("inpaint", {"image": png_base64(64, 64), "mask": png_base64(64, 64, "L"), "strength": 0.1}, "strength"),
    ("img2img", {"image": "not base64 at all"}, "image"),
    ("img2img", {"image": png_base64(60, 64)}, "image"),
    ("inpaint", {"image": png_base64(64, 64), "mask": png_base64(32, 32, "L")}, "mask"),
    ("interpolate", {"prompt_a": "a", "prompt_b": "b", "t": [0.5, 2]}, "t"),
])
def test_each_bad_parameter_gets_422_naming_it(pool, task, change, field):
    response = Signed(pool["proxy"].url).post(f"/gpu/v1/{task}", {**SMALL, **change})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"].startswith(field)


def test_busy_host_answers_503_at_once_and_the_proxy_skips_it(pool):
    started = time.monotonic()
    direct = Signed(pool["busy"].url).post("/gpu/v1/txt2img", SMALL)
    assert direct.status_code == 503 and direct.headers["Retry-After"]
    assert time.monotonic() - started < 5  # refused at once, not after queueing

    client = Signed(pool["proxy"].url)
    results = [client.post("/gpu/v1/txt2img", {**SMALL, "seed": seed}) for seed in range(8)]
    assert [r.status_code for r in results] == [200] * 8
    metrics = requests.get(pool["proxy"].url + "/metrics", timeout=10).text
    busy_line = f'atelier_proxy_host_errors_total{{host="{pool["busy"].url}",kind="busy"}}'
    assert busy_line in metrics  # the proxy did try it, got 503, and sent the request elsewhere
    assert Signed(pool["busy"].url).health()["images_served"] == 0


def test_same_seed_gives_the_same_image_run_after_run_and_host_after_host(pool):
    first = Signed(pool["host_a"].url).post("/gpu/v1/txt2img", {**SMALL, "seed": 1234}).json()
    again = Signed(pool["host_a"].url).post("/gpu/v1/txt2img", {**SMALL, "seed": 1234}).json()
    other_host = Signed(pool["host_b"].url).post("/gpu/v1/txt2img", {**SMALL, "seed": 1234}).json()
    other_seed = Signed(pool["host_a"].url).post("/gpu/v1/txt2img", {**SMALL, "seed": 1235}).json()
    assert first["images"][0]["seed"] == 1234
    assert first["images"][0]["png_base64"] == again["images"][0]["png_base64"]  # bit-identical
    assert first["images"][0]["png_base64"] == other_host["images"][0]["png_base64"]
    assert first["images"][0]["png_base64"] != other_seed["images"][0]["png_base64"]


def test_batched_and_unbatched_results_of_the_same_seeds_match(pool):
    host = Signed(pool["host_b"].url)
    seeds = [501, 502, 503, 504]
    alone = [host.post("/gpu/v1/txt2img", {**SMALL, "seed": s, "scheduler": "Euler a"}).json() for s in seeds]
    assert all(r["batched_requests"] == 1 for r in alone)
    with ThreadPoolExecutor(len(seeds)) as executor:
        together = list(executor.map(
            lambda s: Signed(pool["host_b"].url).post("/gpu/v1/txt2img", {**SMALL, "seed": s,
                                                                           "scheduler": "Euler a"}).json(), seeds))
    assert max(r["batched_requests"] for r in together) > 1  # they really shared a pipeline call
    for single, batched in zip(alone, together):
        assert single["images"][0]["seed"] == batched["images"][0]["seed"]
        # Inside a batch float kernels may round differently: "the same" means every 8-bit channel within ±1.
        difference = abs(decode_png(single["images"][0]["png_base64"]) - decode_png(batched["images"][0]["png_base64"]))
        assert difference.max() <= 1


def test_n_images_per_request_use_consecutive_seeds_like_separate_requests(pool):
    host = Signed(pool["host_a"].url)
    two = host.post("/gpu/v1/txt2img", {**SMALL, "seed": 77, "n": 2}).json()
    second = host.post("/gpu/v1/txt2img", {**SMALL, "seed": 78}).json()
    assert [image["seed"] for image in two["images"]] == [77, 78]
    difference = abs(decode_png(two["images"][1]["png_base64"]) - decode_png(second["images"][0]["png_base64"]))
    assert difference.max() <= 1  # the n=2 call is a batch of two


def test_every_task_runs_through_the_proxy(pool):
    client = Signed(pool["proxy"].url)
    image, mask = png_base64(64, 64), png_base64(64, 64, "L", 255)
    img2img = client.post("/gpu/v1/img2img", {**SMALL, "image": image, "strength": 0.6, "seed": 3})
    inpaint = client.post("/gpu/v1/inpaint", {**SMALL, "image": image, "mask": mask, "seed": 3})
    instruct = client.post("/gpu/v1/instruct", {**SMALL, "prompt": "make it snow", "image": image, "seed": 3})
    upscale = client.post("/gpu/v1/upscale", {**SMALL, "image": png_base64(32, 32), "seed": 3})
    for response in (img2img, inpaint, instruct, upscale):
        assert response.status_code == 200, response.text
    assert (img2img.json()["width"], inpaint.json()["width"], instruct.json()["width"]) == (64, 64, 64)
    assert (upscale.json()["width"], upscale.json()["height"]) == (128, 128)  # 4x
    assert decode_png(img2img.json()["images"][0]["png_base64"]).shape == (64, 64, 3)


def test_interpolation_frames_start_and_end_at_the_two_prompts(pool):
    client = Signed(pool["proxy"].url)
    a = client.post("/gpu/v1/txt2img", {**SMALL, "prompt": "a red fox", "seed": 10}).json()
    b = client.post("/gpu/v1/txt2img", {**SMALL, "prompt": "a blue whale", "seed": 20}).json()
    frames = client.post("/gpu/v1/interpolate", {**SMALL, "prompt_a": "a red fox", "seed_a": 10,
                                                  "prompt_b": "a blue whale", "seed_b": 20,
                                                  "t": [0, 0.5, 1]}).json()
    assert len(frames["images"]) == 3
    first, middle, last = (decode_png(f["png_base64"]) for f in frames["images"])
    assert abs(first - decode_png(a["images"][0]["png_base64"])).max() <= 1
    assert abs(last - decode_png(b["images"][0]["png_base64"])).max() <= 1
    assert abs(middle - first).max() > 1 and abs(middle - last).max() > 1


class _HungHost(BaseHTTPRequestHandler):
    """A host whose health is fine but whose generation never finishes in time (a wedged GPU)."""

    def do_GET(self):
        body = json.dumps({"ready": True, "models": ["tiny"], "loaded_models": ["tiny"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        time.sleep(4)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_host_slower_than_the_request_timeout_answers_504(tmp_path):
    hung = ThreadingHTTPServer(("127.0.0.1", 0), _HungHost)
    threading.Thread(target=hung.serve_forever, daemon=True).start()
    impatient = Process("proxy_impatient", "proxy:app", base_env(
        tmp_path, server_type="cpu", database_url="sqlite:///" + str(tmp_path / "none.db"),
        gpu_hosts=[f"http://127.0.0.1:{hung.server_address[1]}"], gpu_request_timeout_seconds=1), tmp_path)
    try:
        impatient.wait_ready("/healthz")
        started = time.monotonic()
        slow = Signed(impatient.url).post("/gpu/v1/txt2img", SMALL)
        assert slow.status_code == 504
        assert slow.json()["error"]["code"] == "gateway_timeout"
        assert time.monotonic() - started < 3.5  # answered at the timeout, not when the host finished
    finally:
        impatient.stop()
        hung.shutdown()


def test_fifty_requests_succeed_while_a_host_is_killed_partway(pool):
    """Runs last in this module: it kills host_c for good."""
    client_urls = pool["proxy"].url
    done: list[int] = []

    def one(seed: int):
        response = Signed(client_urls).post("/gpu/v1/txt2img", {**SMALL, "seed": seed}, timeout=120)
        done.append(seed)
        return response

    with ThreadPoolExecutor(6) as executor:
        futures = [executor.submit(one, seed) for seed in range(1000, 1050)]
        while len(done) < 10:
            time.sleep(0.05)
        pool["host_c"].kill()
        responses = [future.result() for future in futures]
    assert [r.status_code for r in responses] == [200] * 50
    assert [r.json()["images"][0]["seed"] for r in responses] == list(range(1000, 1050))
    metrics = requests.get(pool["proxy"].url + "/metrics", timeout=10).text
    for name in ("host_a", "host_b", "host_c"):  # every host took its share (host_c until it died)
        assert f'atelier_proxy_host_requests_total{{host="{pool[name].url}"}}' in metrics
    # Requests in flight on host_c when it died failed at the connection and were retried elsewhere.
    assert f'atelier_proxy_host_errors_total{{host="{pool["host_c"].url}",kind="connection"}}' in metrics
    deadline = time.monotonic() + 10
    while _proxy_hosts(pool)[pool["host_c"].url]["available"] and time.monotonic() < deadline:
        time.sleep(0.2)  # the next active health check notices the dead host
    assert _proxy_hosts(pool)[pool["host_c"].url]["available"] is False

    # With every host but the busy one gone, the proxy answers 503 with Retry-After.
    pool["host_a"].kill()
    pool["host_b"].kill()
    response = Signed(client_urls).post("/gpu/v1/txt2img", SMALL)
    assert response.status_code == 503 and response.headers["Retry-After"]
