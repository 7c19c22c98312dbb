"""Images per second with 8 concurrent clients against one GPU host: batching on vs one request at a time vs
the pipeline called directly in-process at its best batch size. `tiny`, 256x256, 20 steps (override with env
BENCH_SIZE, BENCH_STEPS, BENCH_REQUESTS_PER_CLIENT)."""
from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from _servers import Server, signed_post

SIZE = int(os.environ.get("BENCH_SIZE", "256"))
STEPS = int(os.environ.get("BENCH_STEPS", "20"))
CLIENTS = 8
PER_CLIENT = int(os.environ.get("BENCH_REQUESTS_PER_CLIENT", "3"))


ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def start_host(max_batch: int) -> Server:
    """One GPU host with gpu_max_batch_size = max_batch, warmed up."""
    host = Server("wsgi:app", server_type="gpu", gpu_max_batch_size=max_batch, gpu_batch_wait_ms=25,
                  gpu_models=["tiny"], gpu_preload_models=["tiny"]).wait_ready()
    signed_post(requests.Session(), host.url, "/gpu/v1/txt2img",
                {"prompt": "warm up", "width": SIZE, "height": SIZE, "steps": STEPS, "seed": 0})
    return host


def serve(host: Server) -> float:
    """Images per second from one host with 8 clients in parallel."""

    def client(index: int) -> int:
        session = requests.Session()
        for i in range(PER_CLIENT):
            signed_post(session, host.url, "/gpu/v1/txt2img", {
                "prompt": f"client {index} picture {i}", "width": SIZE, "height": SIZE, "steps": STEPS,
                "seed": index * 100 + i})
        return PER_CLIENT

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as executor:
        images = sum(executor.map(client, range(CLIENTS)))
    return images / (time.perf_counter() - started)


def make_direct():
    """A function measuring the in-process pipeline's images per second at a batch size."""
    import torch
    from diffusers import StableDiffusionPipeline

    from app.gpu import tiny

    pipe = StableDiffusionPipeline(**tiny.base_components())
    pipe.set_progress_bar_config(disable=True)

    def measure(batch: int) -> float:
        calls = max(1, (CLIENTS * PER_CLIENT) // (batch * 2))
        with torch.inference_mode():
            started = time.perf_counter()
            for call in range(calls):
                pipe([f"picture {call} {i}" for i in range(batch)], width=SIZE, height=SIZE,
                     num_inference_steps=STEPS, generator=[torch.Generator().manual_seed(i) for i in range(batch)])
        return calls * batch / (time.perf_counter() - started)

    measure(1)  # warm up
    return measure


def main() -> None:
    """Interleave the measurements round by round (the CPU is shared, so load drifts) and print median ratios."""
    print(f"tiny, {SIZE}x{SIZE}, {STEPS} steps, {CLIENTS} clients x {PER_CLIENT} requests, {ROUNDS} rounds, "
          f"{os.cpu_count()} CPU cores", flush=True)
    batched_host, single_host = start_host(8), start_host(1)
    direct = make_direct()
    results: dict[str, list[float]] = {}
    try:
        for round_number in range(ROUNDS):
            row = {"batched": serve(batched_host), "single": serve(single_host)}
            for batch in (1, 2, 4, 8):
                row[f"direct_b{batch}"] = direct(batch)
            for name, value in row.items():
                results.setdefault(name, []).append(value)
            print(f"  round {round_number + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    finally:
        batched_host.stop()
        single_host.stop()
    median = {name: statistics.median(values) for name, values in results.items()}
    best_direct = max((v, k) for k, v in median.items() if k.startswith("direct"))
    print(f"median images/s: served batched {median['batched']:.2f}, served one at a time {median['single']:.2f}, "
          f"direct best {best_direct[0]:.2f} ({best_direct[1]})")
    print(f"batching vs one at a time: {median['batched'] / median['single']:.2f}x (target >= 1.25x)")
    print(f"serving (batched) vs direct pipeline at its best batch size: {median['batched'] / best_direct[0]:.2f}x "
          f"(target >= 0.9x)")


if __name__ == "__main__":
    main()
