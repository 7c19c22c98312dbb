"""The AUTOMATIC1111 API: its fields in and out, Basic or Bearer auth, charged and stored like the native API."""
from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import requests
from PIL import Image as PILImage

from tests.generation.conftest import wait_available
from tests.media.conftest import make_png


@pytest.fixture
def a1111(live_url, make_user):
    """A requests session with Basic auth (email, API token); returns (session, user_id, bearer headers)."""
    user_id, headers, token, email = make_user(credit=200)
    session = requests.Session()
    session.auth = (email, token)
    return session, user_id, headers


def test_txt2img_answers_base64_images_parameters_and_info_with_seeds(a1111, live_url, balance):
    session, user_id, headers = a1111
    response = session.post(f"{live_url}/sdapi/v1/txt2img", timeout=120, json={
        "prompt": "a castle", "negative_prompt": "blurry", "seed": 1234, "steps": 2, "cfg_scale": 6,
        "width": 64, "height": 64, "sampler_name": "Euler a", "batch_size": 2, "n_iter": 1,
        "override_settings": {"sd_model_checkpoint": "tiny"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["images"]) == 2
    picture = PILImage.open(io.BytesIO(base64.b64decode(body["images"][0])))
    assert picture.size == (64, 64)
    info = json.loads(body["info"])
    assert info["all_seeds"] == [1234, 1235] and info["seed"] == 1234 and info["sd_model_name"] == "tiny"
    assert body["parameters"]["prompt"] == "a castle"
    library = requests.get(f"{live_url}/api/v1/images", headers=headers, timeout=30).json()["items"]
    assert sorted(i["seed"] for i in library) == [1234, 1235]
    assert {i["scheduler"] for i in library} == {"euler_a"}
    assert balance(user_id)[0] < 200


def test_img2img_with_a_mask_inpaints_and_keeps_lineage(a1111, live_url):
    session, _, headers = a1111
    mask = PILImage.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 32))
    out = io.BytesIO()
    mask.save(out, "PNG")
    response = session.post(f"{live_url}/sdapi/v1/img2img", timeout=120, json={
        "init_images": [base64.b64encode(make_png(64, 64)).decode()], "mask": base64.b64encode(out.getvalue()).decode(),
        "prompt": "a door", "denoising_strength": 0.6, "steps": 2, "seed": 5})
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["info"])["all_seeds"] == [5]
    kinds = sorted(i["kind"] for i in requests.get(f"{live_url}/api/v1/images", headers=headers,
                                                    timeout=30).json()["items"])
    assert kinds == ["inpaint", "upload"]


def test_bearer_works_and_wrong_credentials_get_401(a1111, live_url):
    session, _, headers = a1111
    assert requests.get(f"{live_url}/sdapi/v1/sd-models", headers=headers, timeout=30).json()[0]["title"] == "tiny"
    wrong = requests.get(f"{live_url}/sdapi/v1/options", auth=(session.auth[0], "not-the-token"), timeout=30)
    assert wrong.status_code == 401 and "Basic" in wrong.headers["WWW-Authenticate"]
    assert requests.post(f"{live_url}/sdapi/v1/txt2img", json={"prompt": "x"}, timeout=30).status_code == 401


def test_samplers_options_and_idle_progress(a1111, live_url):
    session, _, _ = a1111
    names = [s["name"] for s in session.get(f"{live_url}/sdapi/v1/samplers", timeout=30).json()]
    assert "Euler a" in names and "DPM++ 2M Karras" in names
    assert session.get(f"{live_url}/sdapi/v1/options", timeout=30).json()["sd_model_checkpoint"] == "tiny"
    idle = session.get(f"{live_url}/sdapi/v1/progress", timeout=30).json()
    assert idle["progress"] == 0.0 and idle["state"]["job_count"] == 0


def test_bad_fields_are_422_and_cost_nothing(a1111, live_url, balance):
    session, user_id, _ = a1111
    for body, field in (({"prompt": "x", "steps": 0}, "steps"), ({"prompt": "x", "sampler_name": "Nope"}, "scheduler"),
                        ({"prompt": "x", "batch_size": 0}, "batch_size")):
        response = session.post(f"{live_url}/sdapi/v1/txt2img", json={**body, "width": 64, "height": 64},
                                timeout=30)
        assert response.status_code == 422 and response.json()["field"] == field
    assert session.post(f"{live_url}/sdapi/v1/img2img", json={"prompt": "x"}, timeout=30).status_code == 422
    assert balance(user_id) == (200, 0)


class TestConcurrency:
    """Against the faulty host: a slow request of one user does not hold up another user's."""

    @pytest.fixture
    def settings_overrides(self, settings_overrides, faulty_stack):
        settings_overrides["proxy_url"] = faulty_stack["proxy"].url
        wait_available(faulty_stack["proxy"])
        return settings_overrides

    def test_a_slow_request_does_not_block_another_users(self, live_url, make_user):
        _, _, slow_token, slow_email = make_user()
        _, _, fast_token, fast_email = make_user()
        finished: dict[str, float] = {}

        def run(name, auth, prompt):
            response = requests.post(f"{live_url}/sdapi/v1/txt2img", auth=auth, timeout=60,
                                     json={"prompt": prompt, "width": 64, "height": 64, "steps": 2})
            assert response.status_code == 200, response.text
            finished[name] = time.monotonic()

        slow = threading.Thread(target=run, args=("slow", (slow_email, slow_token), "slow:2"))
        slow.start()
        time.sleep(0.5)
        busy = requests.get(f"{live_url}/sdapi/v1/progress", auth=(slow_email, slow_token), timeout=30).json()
        assert busy["state"]["job_count"] == 1
        run("fast", (fast_email, fast_token), "quick")
        slow.join()
        assert finished["fast"] < finished["slow"]
