"""The OpenAPI document: valid OpenAPI 3, and true to the running server (fuzzed with schemathesis)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_document_is_valid_openapi_3_and_covers_the_native_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    for path in ("/auth/login", "/credits", "/credits/quote", "/images", "/images/generations", "/images/edits",
                 "/images/{image_id}/variations", "/images/{image_id}/upscale", "/jobs/{job_id}",
                 "/jobs/{job_id}/cancel", "/links", "/tokens", "/referrals", "/gallery"):
        assert path in spec["paths"], path
    generation = spec["components"]["schemas"]["GenerationRequest"]["properties"]
    assert generation["n"]["maximum"] == 4  # the deployment's generation_max_images


@pytest.mark.settings(gpu_max_steps=2, generation_max_images=2, gpu_max_pixels=64 * 64)
def test_fuzzing_every_operation_finds_no_5xx_and_no_response_off_the_schema(client, live_url, make_user):
    """A few generated requests per operation (bounded so the whole run takes a minute or two)."""
    _, headers, _, _ = make_user(credit=100000)
    schema = (schemathesis.openapi.from_dict(client.get("/api/v1/openapi.json").json)
              .exclude(method="DELETE", path="/me").exclude(path="/auth/logout"))
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(base_url=f"{live_url}/api/v1", headers=headers, checks=CHECKS, timeout=60)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    # The success paths, for sure: the documented example, synchronously and as a job, must match the schema too.
    spec = client.get("/api/v1/openapi.json").json
    example = spec["paths"]["/images/generations"]["post"]["requestBody"]["content"]["application/json"]["example"]
    operation = schema["/images/generations"]["POST"]
    for extra in ({}, {"Prefer": "respond-async"}):
        case = operation.Case(body=example, media_type="application/json", headers=extra)
        response = case.call_and_validate(base_url=f"{live_url}/api/v1", headers=headers, checks=CHECKS)
        assert response.status_code == (202 if extra else 201)
    image_id = client.get("/api/v1/images", headers=headers).json["items"][0]["id"]
    for path in ("/images/{image_id}/variations", "/images/{image_id}/upscale"):
        case = schema[path]["POST"].Case(path_parameters={"image_id": image_id}, body={"steps": 2, "strength": 0.5},
                                         media_type="application/json")
        response = case.call_and_validate(base_url=f"{live_url}/api/v1", headers=headers, checks=CHECKS)
        assert response.status_code == 201, response.text
