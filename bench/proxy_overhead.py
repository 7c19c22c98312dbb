"""Latency (median, p99) and requests per second through proxy.py vs straight to one GPU host, at 1 and 32
concurrent clients. Two request kinds: a signed GET /gpu/v1/models (no GPU work: the proxy's own cost shows)
and a tiny txt2img (64x64, 2 steps). Env BENCH_REQUESTS sets requests per measurement."""
from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from _servers import Server, signed_get, signed_post

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
GENERATE = {"prompt": "a small boat", "width": 64, "height": 64, "steps": 2, "model": "tiny"}


def measure(base: str, kind: str, clients: int, total: int) -> tuple[float, float, float]:
    """(median ms, p99 ms, requests per second) for `total` requests spread over `clients` threads."""
    latencies: list[float] = []

    def client(count: int) -> None:
        session = requests.Session()
        for i in range(count):
            started = time.perf_counter()
            if kind == "models":
                signed_get(session, base, "/gpu/v1/models")
            else:
                signed_post(session, base, "/gpu/v1/txt2img", {**GENERATE, "seed": i})
            latencies.append((time.perf_counter() - started) * 1000)

    per_client = max(1, total // clients)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as executor:
        list(executor.map(client, [per_client] * clients))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, len(latencies) / elapsed


def in_process_cost(host_url: str, rounds: int = 300) -> tuple[float, float]:
    """Median ms of the proxy's own code (ProxyApp called in-process, forwarding to the host) vs urllib3 alone."""
    import io

    import urllib3

    from _servers import SECRET, sign

    os.environ.update({"ATELIER_ENVIRONMENT": "testing", "ATELIER_GPU_SHARED_SECRET": SECRET,
                       "ATELIER_GPU_HOSTS": host_url, "ATELIER_LOG_JSON": "false",
                       "ATELIER_DATABASE_URL": "sqlite:////nonexistent/atelier.db"})
    import proxy

    app = proxy.create_proxy()
    pool = urllib3.PoolManager()

    def through_proxy() -> None:
        headers = sign(SECRET, "GET", "/gpu/v1/models")
        environ = {"PATH_INFO": "/gpu/v1/models", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(b""),
                   "CONTENT_LENGTH": "0", "HTTP_X_ATELIER_TIMESTAMP": headers["X-Atelier-Timestamp"],
                   "HTTP_X_ATELIER_SIGNATURE": headers["X-Atelier-Signature"]}
        app(environ, lambda status, headers: None)

    def straight() -> None:
        pool.request("GET", host_url + "/gpu/v1/models", headers=sign(SECRET, "GET", "/gpu/v1/models"))

    samples: dict[str, list[float]] = {"proxy": [], "direct": []}
    for _ in range(rounds):
        for name, call in (("proxy", through_proxy), ("direct", straight)):
            started = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return statistics.median(samples["proxy"]), statistics.median(samples["direct"])


def main() -> None:
    """Measure direct and proxied side by side (interleaved) and print the overhead and throughput ratio."""
    host = Server("wsgi:app", server_type="gpu", gpu_models=["tiny"], gpu_preload_models=["tiny"]).wait_ready()
    proxy = Server("proxy:app", gpu_hosts=[host.url], proxy_health_interval_seconds=5).wait_ready("/healthz")
    print(f"{os.cpu_count()} CPU cores shared by client, proxy and host; {REQUESTS} requests per measurement",
          flush=True)
    try:
        for kind, total in (("models", REQUESTS), ("txt2img", max(32, REQUESTS // 8))):
            for clients in (1, 32):
                measure(host.url, kind, clients, min(total, 64))  # warm connections and caches
                measure(proxy.url, kind, clients, min(total, 64))
                direct = measure(host.url, kind, clients, total)
                proxied = measure(proxy.url, kind, clients, total)
                print(f"{kind:8s} {clients:2d} clients | direct median {direct[0]:7.2f} ms p99 {direct[1]:7.2f} ms "
                      f"{direct[2]:7.1f} req/s | proxy median {proxied[0]:7.2f} ms p99 {proxied[1]:7.2f} ms "
                      f"{proxied[2]:7.1f} req/s | added median {proxied[0] - direct[0]:+.2f} ms (target <= 1), "
                      f"throughput {proxied[2] / direct[2]:.0%} of direct (target >= 75%)", flush=True)
        with_proxy, without = in_process_cost(host.url)
        print(f"proxy code alone (ProxyApp called in-process, no gunicorn hop): {with_proxy:.3f} ms vs "
              f"{without:.3f} ms for the same upstream request without it: {with_proxy - without:+.3f} ms", flush=True)
    finally:
        proxy.stop()
        host.stop()


if __name__ == "__main__":
    main()
