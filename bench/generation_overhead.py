"""End-to-end cost of the platform around one generation: POST /api/v1/images/generations (web → proxy → GPU host
→ storage → response, all real processes) vs the same `tiny` pipeline called in-process with the same parameters,
measured side by side (alternating) in one run. Target ≤ 1.10x at 256x256, 20 steps (BENCH_SIZE, BENCH_STEPS,
BENCH_ROUNDS override). Needs the PostgreSQL of the test setup (ATELIER_TEST_PG)."""
from __future__ import annotations

import os
import statistics
import sys
import time
import uuid

import requests

from _servers import ROOT, SECRET, Server, throwaway_database

SIZE = int(os.environ.get("BENCH_SIZE", "256"))
STEPS = int(os.environ.get("BENCH_STEPS", "20"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PARAMS = {"prompt": "a lighthouse at dusk", "width": SIZE, "height": SIZE, "steps": STEPS, "guidance": 7.5,
          "scheduler": "ddim"}


def seed_database(url: str) -> str:
    """Give the (migrated) database one verified user with credits; return that user's API token."""
    sys.path.insert(0, ROOT)
    from app import create_app
    from app.extensions import db
    from app.models import ApiToken, User
    from app.services import credits
    from app.services.secrets import hash_token

    token = f"bench-{uuid.uuid4().hex}"
    app = create_app({"environment": "testing", "server_type": "cpu", "database_url": url, "log_json": False,
                      "instance_dir": os.path.join(ROOT, "instance", "bench")})
    with app.app_context():
        user = User(email="bench@example.com", password_hash="x", referral_code="benchcode", is_verified=True)
        db.session.add(user)
        db.session.flush()
        db.session.add(ApiToken(user_id=user.id, name="bench", token_hash=hash_token(token), prefix=token[:8]))
        db.session.commit()
        credits.grant(user.id, 1_000_000)
        db.session.remove()
        db.engine.dispose()
    return token


def in_process_pipeline():
    """The tiny pipeline exactly as a GPU host builds it, and a function running one request on it."""
    sys.path.insert(0, ROOT)
    import torch

    from app.gpu import tiny
    from app.gpu.schedulers import make_scheduler
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**tiny.base_components())
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = make_scheduler("ddim", pipe.scheduler.config)

    def run(seed: int) -> None:
        with torch.inference_mode():
            pipe(prompt=[PARAMS["prompt"]], negative_prompt=[""], width=SIZE, height=SIZE, num_inference_steps=STEPS,
                 guidance_scale=PARAMS["guidance"], generator=[torch.Generator("cpu").manual_seed(seed)],
                 output_type="pil")

    return run


def main() -> None:
    with throwaway_database() as database_url:
        run(database_url, seed_database(database_url))


def run(database_url: str, token: str) -> None:
    """Start a GPU host, the proxy and the web process, then time both paths side by side."""
    servers: list[Server] = []
    try:
        gpu = Server("wsgi:app", threads=8, server_type="gpu", gpu_models=["tiny"], gpu_preload_models=["tiny"],
                     gpu_batch_wait_ms=0).wait_ready()
        servers.append(gpu)
        proxy = Server("proxy:app", server_type="cpu", database_url="sqlite:////nonexistent/none.db",
                       gpu_hosts=[gpu.url]).wait_ready("/healthz")
        servers.append(proxy)
        media = os.path.join(os.path.dirname(gpu.log_path), "media")
        web = Server("wsgi:app", threads=8, server_type="cpu", database_url=database_url, proxy_url=proxy.url,
                     storage_local_dir=media, gpu_shared_secret=SECRET).wait_ready()
        servers.append(web)
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}

        def end_to_end(seed: int) -> None:
            response = session.post(f"{web.url}/api/v1/images/generations", json={**PARAMS, "seed": seed},
                                    headers=headers, timeout=600)
            assert response.status_code == 201, response.text

        direct = in_process_pipeline()
        end_to_end(0)  # warm both paths
        direct(0)
        platform_times, direct_times = [], []
        for round_ in range(1, ROUNDS + 1):
            started = time.perf_counter()
            end_to_end(round_)
            platform_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            direct(round_)
            direct_times.append(time.perf_counter() - started)
        platform, pipeline = statistics.median(platform_times), statistics.median(direct_times)
        print(f"tiny {SIZE}x{SIZE}, {STEPS} steps, {ROUNDS} rounds (median)")
        print(f"  in-process pipeline:            {pipeline * 1000:8.1f} ms")
        print(f"  POST /api/v1/images/generations: {platform * 1000:8.1f} ms  (web → proxy → GPU host → storage)")
        print(f"  overhead ratio: {platform / pipeline:.3f}x  (target ≤ 1.10x)")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
