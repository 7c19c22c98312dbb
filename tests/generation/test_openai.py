"""The official `openai` client against a live server: images are charged for and land in the library."""
from __future__ import annotations

import base64
import io

import openai
import pytest
import requests

from tests.media.conftest import make_png


@pytest.fixture
def oai(live_url, make_user):
    """An OpenAI client whose API key is an Atelier API token; returns (client, user_id, headers)."""
    user_id, headers, token, _ = make_user(credit=200)
    return openai.OpenAI(api_key=token, base_url=f"{live_url}/v1", max_retries=0, timeout=120), user_id, headers


def test_openai_client_generates_an_image_that_appears_in_the_library(oai, live_url, balance):
    client, user_id, headers = oai
    result = client.images.generate(prompt="a lighthouse at dusk", n=2, size="64x64", model="dall-e-2",
                                    response_format="b64_json", extra_body={"steps": 2})
    assert len(result.data) == 2
    png = base64.b64decode(result.data[0].b64_json)
    assert png.startswith(b"\x89PNG") and result.size == "64x64"
    library = requests.get(f"{live_url}/api/v1/images", headers=headers, timeout=30).json()["items"]
    assert len(library) == 2 and {i["prompt"] for i in library} == {"a lighthouse at dusk"}
    assert {i["content_hash"] for i in library} >= {__import__("hashlib").sha256(png).hexdigest()}
    assert balance(user_id)[0] < 200


def test_openai_url_format_gives_a_fetchable_signed_url(oai, live_url):
    client, _, _ = oai
    result = client.images.generate(prompt="a cat", size="64x64", extra_body={"steps": 2})
    url = result.data[0].url.replace("http://atelier.test", live_url)  # base_url of the test config
    assert "signature=" in url
    assert requests.get(url, timeout=30).content.startswith(b"\x89PNG")


def test_openai_edit_and_variation_with_uploads(oai, live_url):
    client, _, headers = oai
    edited = client.images.edit(image=("photo.png", io.BytesIO(make_png(64, 64)), "image/png"), prompt="add snow",
                                size="64x64", response_format="b64_json", extra_body={"steps": 2})
    assert base64.b64decode(edited.data[0].b64_json).startswith(b"\x89PNG")
    varied = client.images.create_variation(image=("photo.png", io.BytesIO(make_png(64, 64)), "image/png"), n=1,
                                            response_format="url")
    assert varied.data[0].url
    kinds = sorted(i["kind"] for i in requests.get(f"{live_url}/api/v1/images", headers=headers,
                                                      timeout=30).json()["items"])
    assert kinds == ["img2img", "upload", "upload", "variation"]


def test_openai_errors_have_openai_shape_and_raise_the_clients_exceptions(oai, live_url, make_user):
    client, _, _ = oai
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        client.images.generate(prompt="x", size="65x64")
    assert bad.value.body["param"] == "width" and bad.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=f"{live_url}/v1", max_retries=0).images.generate(prompt="x")
    _, _, poor_token, _ = make_user(credit=0)
    poor = openai.OpenAI(api_key=poor_token, base_url=f"{live_url}/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as short:
        poor.images.generate(prompt="x", size="64x64")
    assert short.value.status_code == 402 and short.value.body["type"] == "insufficient_quota"
