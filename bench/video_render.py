"""Frames per second of one music video rendered by the real render pipeline (chunks through proxy.py, stored,
encoded to MP4 with the audio) with one GPU host vs two, and vs the same frames from the pipeline in-process.

Every host, and the in-process run, gets one torch thread, so on a small machine the ratios show scheduling,
not core count. Targets: two hosts >= 1.7x one host; one host >= 0.85x in-process.

    .venv/bin/python bench/video_render.py [--seconds 4] [--fps 8] [--size 192] [--steps 4]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import wave

os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the GPU hosts
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from bench._servers import SECRET, Server  # noqa: E402


def make_wav(seconds: float, rate: int = 22050) -> bytes:
    """A sine with a click every half second."""
    t = np.arange(int(seconds * rate)) / rate
    samples = 0.2 * np.sin(2 * np.pi * 220 * t)
    for start in np.arange(0, seconds, 0.5):
        i = int(start * rate)
        samples[i:i + 200] += 0.6
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def build_app(tmp: str, args):
    """A cpu-role app on a SQLite database of its own with a project ready to render."""
    from app import create_app
    from app.extensions import db
    from app.models import User
    from app.services import audio, credits, migrations, videos

    url = f"sqlite:///{tmp}/bench.db"
    migrations.upgrade(url)
    app = create_app({"environment": "testing", "server_type": "cpu", "database_url": url, "instance_dir": tmp,
                      "storage_local_dir": f"{tmp}/media", "mail_outbox_dir": f"{tmp}/outbox",
                      "gpu_shared_secret": SECRET, "video_chunk_frames": args.chunk,
                      "video_render_concurrency": args.concurrency, "video_render_slice_seconds": 3600,
                      "log_json": False})
    with app.app_context():
        user = User(email="bench@example.com", password_hash="x", referral_code="bench", is_verified=True)
        db.session.add(user)
        db.session.commit()
        credits.grant(user.id, 100000)
        clip = audio.store_upload(user, make_wav(args.seconds), "bench")
        seconds = args.seconds
        project = videos.create_project(user, {
            "audio_id": str(clip.public_id), "width": args.size, "height": args.size, "steps": args.steps,
            "fps": args.fps, "prompts": [{"at": 0, "prompt": "a red fox", "seed": 1},
                                         {"at": seconds / 2, "prompt": "a blue sea", "seed": 2},
                                         {"at": seconds, "prompt": "a green hill", "seed": 3}]})
        return app, user.id, str(project.public_id)


def render_through(app, user_id: int, project_id: str, proxy_url: str) -> tuple[float, int, float]:
    """Submit and render the project through `proxy_url` as a worker would; (seconds end to end including the
    MP4 encode, frames, frames/s while the chunks were rendering)."""
    from app.extensions import db
    from app.models import User
    from app.services import video_render, videos

    app.config["ATELIER"].proxy_url = proxy_url
    with app.app_context():
        user = db.session.get(User, user_id)
        project = videos.submit(user, project_id, batch=True)
        started = time.perf_counter()
        while video_render.render_step(project.id) == "continue":
            pass
        elapsed = time.perf_counter() - started
        project = videos.find_project(user, project_id)
        assert project.status == "ready", project.failure_reason
        return elapsed, project.frames_total, project.render_fps


def render_in_process(app, user_id: int, project_id: str) -> tuple[float, int]:
    """The same chunks straight through the tiny pipeline in this process (one torch thread)."""
    import torch

    from app.config import load_settings
    from app.extensions import db
    from app.gpu import loading, tasks
    from app.gpu.validation import Job
    from app.models import User
    from app.services import video_render, videos

    torch.set_num_threads(1)
    settings = load_settings({"environment": "testing", "server_type": "gpu", "instance_dir": app.instance_path})
    model = loading.load_model("tiny", settings, loading.placement_from_settings(settings))
    with app.app_context():
        project = videos.find_project(db.session.get(User, user_id), project_id)
        chunks = video_render.plan_chunks(project)
        pipe = tasks.pipeline_for(model, "interpolate")
        frames = 0
        started = time.perf_counter()
        for chunk in chunks:
            params = video_render._request(project, chunk)
            params["negative_prompt"] = ""
            job = Job("interpolate", "tiny", params, [params["seed_a"], params["seed_b"]])
            frames += len(tasks.interpolate(pipe, job, settings.gpu_max_batch_size))
        return time.perf_counter() - started, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="atelier-video-bench-")
    app, user_id, project_id = build_app(tmp, args)
    gpu = {"server_type": "gpu", "gpu_models": ["tiny"], "gpu_preload_models": ["tiny"], "gpu_batch_wait_ms": 1}
    hosts = [Server("wsgi:app", threads=8, **gpu) for _ in range(2)]
    proxies = []
    try:
        for host in hosts:
            host.wait_ready()
        db_url = f"sqlite:///{tmp}/proxy.db"
        from app.services import migrations

        migrations.upgrade(db_url)
        for group in ([hosts[0]], hosts):
            proxy = Server("proxy:app", server_type="cpu", database_url=db_url,
                           gpu_hosts=[h.url for h in group], proxy_health_interval_seconds=1)
            proxies.append(proxy.wait_ready("/healthz"))
        render_through(app, user_id, project_id, proxies[1].url)  # warm both hosts (first-call costs)
        render_in_process(app, user_id, project_id)  # warm-up
        # Rounds alternate the three ways and keep each one's best, so a burst of load elsewhere on a shared
        # machine does not decide the ratios.
        results, chunk_rates = {}, {}
        for round_ in range(args.rounds):
            for name, proxy in (("one host", proxies[0]), ("two hosts", proxies[1])):
                seconds, frames, chunks = render_through(app, user_id, project_id, proxy.url)
                results[name] = max(results.get(name, 0), frames / seconds)
                chunk_rates[name] = max(chunk_rates.get(name, 0), chunks)
                print(f"round {round_ + 1} {name:>10}: {frames} frames in {seconds:6.2f} s = "
                      f"{frames / seconds:6.2f} frames/s end to end (chunks alone: {chunks:6.2f})", flush=True)
            seconds, frames = render_in_process(app, user_id, project_id)
            results["in-process"] = max(results.get("in-process", 0), frames / seconds)
            print(f"round {round_ + 1} in-process: {frames} frames in {seconds:6.2f} s = {frames / seconds:6.2f} "
                  "frames/s", flush=True)
        for name, rate in results.items():
            print(f"best {name:>10}: {rate:6.2f} frames/s")
    finally:
        for server in proxies + hosts:
            server.stop()
    two_vs_one = results["two hosts"] / results["one host"]
    one_vs_local = results["one host"] / results["in-process"]
    print(f"two hosts / one host  = {two_vs_one:.2f}x (target >= 1.7); chunks alone "
          f"{chunk_rates['two hosts'] / chunk_rates['one host']:.2f}x")
    print(f"one host / in-process = {one_vs_local:.2f}x (target >= 0.85); chunks alone "
          f"{chunk_rates['one host'] / results['in-process']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
