"""POST /sdapi/v1/options picks the caller's own default model for later txt2img/img2img (A1111's global
"current model", but per user)."""
from __future__ import annotations

import base64
import json

import pytest
import requests

from tests.generation.test_a1111 import a1111  # noqa: F401 (fixture)
from tests.media.conftest import make_png

SMALL = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 3}

# "ghost" is listed first, so it is the deployment default, but no GPU host serves it: a request that falls
# back to the default fails, one that uses the user's chosen "tiny" succeeds.
pytestmark = pytest.mark.settings(gpu_models=["ghost", "tiny"])


def test_a_chosen_model_is_reflected_and_used_by_later_requests(a1111, live_url, make_user):  # noqa: F811
    session, _, _ = a1111
    options = f"{live_url}/sdapi/v1/options"
    assert session.get(options, timeout=30).json()["sd_model_checkpoint"] == "ghost"

    chosen = session.post(options, json={"sd_model_checkpoint": "tiny [0123abcd]", "samples_format": "jpg"},
                          timeout=30)
    assert chosen.status_code == 200 and chosen.json() is None
    assert session.get(options, timeout=30).json()["sd_model_checkpoint"] == "tiny"

    made = session.post(f"{live_url}/sdapi/v1/txt2img", json=SMALL, timeout=120)
    assert made.status_code == 200, made.text
    assert json.loads(made.json()["info"])["sd_model_name"] == "tiny"
    edited = session.post(f"{live_url}/sdapi/v1/img2img", timeout=120, json={
        **SMALL, "init_images": [base64.b64encode(make_png(64, 64)).decode()], "denoising_strength": 0.5})
    assert edited.status_code == 200, edited.text
    assert json.loads(edited.json()["info"])["sd_model_name"] == "tiny"

    # The choice is the caller's own: another user still sees (and gets) the deployment default.
    _, _, token, email = make_user(credit=50)
    assert requests.get(options, auth=(email, token), timeout=30).json()["sd_model_checkpoint"] == "ghost"
    theirs = requests.post(f"{live_url}/sdapi/v1/txt2img", json=SMALL, auth=(email, token), timeout=120)
    assert theirs.status_code != 200 and "ghost" in theirs.text


def test_an_unknown_model_is_a_422_in_a1111_form_and_changes_nothing(a1111, live_url):  # noqa: F811
    session, _, headers = a1111
    options = f"{live_url}/sdapi/v1/options"
    assert session.post(options, json={"sd_model_checkpoint": "tiny"}, timeout=30).status_code == 200
    for bad in ("no-such-model", "", 7):
        refused = session.post(options, json={"sd_model_checkpoint": bad}, timeout=30)
        body = refused.json()
        assert refused.status_code == 422 and body["field"] == "sd_model_checkpoint", body
        assert body["error"] == "invalid_request" and body["detail"]
    assert session.get(options, timeout=30).json()["sd_model_checkpoint"] == "tiny"
    assert requests.post(options, json={"sd_model_checkpoint": "tiny"}, timeout=30).status_code == 401
    # Other A1111 options are accepted and ignored; the choice stays.
    assert session.post(options, json={"CLIP_stop_at_last_layers": 2}, timeout=30).status_code == 200
    assert requests.get(options, headers=headers, timeout=30).json()["sd_model_checkpoint"] == "tiny"
