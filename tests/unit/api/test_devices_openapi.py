"""The OpenAPI schema documents the device endpoints, their body and every refusal."""

from __future__ import annotations

from ingest_api.app import create_app
from ingest_api.settings import ApiSettings


def test_the_device_endpoints_are_documented_with_their_refusals() -> None:
    schema = create_app(ApiSettings(api_docs_public=True)).openapi()
    post = schema["paths"]["/v1/devices/notifications"]["post"]
    assert {"200", "201", "401", "403", "413", "422"} <= set(post["responses"])
    refusals = post["responses"]["422"]["description"] + post["responses"]["403"]["description"]
    for code in ("invalid_amount_precision", "device_revoked", "device_card_mismatch"):
        assert code in refusals
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    fields = schema["components"]["schemas"][body]["properties"]
    assert set(fields) == {"notification_id", "card_id", "sender", "text", "received_at"}
    beat = schema["paths"]["/v1/devices/heartbeat"]["post"]
    assert {"200", "401", "403"} <= set(beat["responses"])
