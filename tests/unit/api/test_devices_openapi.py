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


def test_an_operators_confirmation_on_an_attached_notification_is_documented() -> None:
    schema = create_app(ApiSettings(api_docs_public=True)).openapi()
    post = schema["paths"]["/v1/operator/orders/{uid}/payment"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "413", "503", "504"} <= set(post["responses"])
    conflicts = post["responses"]["409"]["description"]
    for code in ("notification_not_attached", "deadline_passed"):
        assert code in conflicts
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"notification_id"}
