"""Security headers on every answer, no-store on everything under /v1, the docs pages with
their CSP, and the docs gone when they are not public."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from ingest_api.security import REDOC_CDN, SWAGGER_CDN, script_hashes
from tests.fixtures.light_api import Db, client, light_app, login, seeded

pytestmark = pytest.mark.integration

UNKNOWN_UID = "00000000-0000-4000-8000-000000000000"
EVERY_ANSWER = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Db]:
    with seeded(migrated_database_url) as database:
        yield database


def has_every_answer_header(headers: dict[str, str]) -> bool:
    return all(headers.get(name) == value for name, value in EVERY_ANSWER.items())


async def test_the_login_answer_is_not_stored(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url)) as api:
        signed = await login(api, "olga")
        refused = await login(api, "olga", "not the password at all")
    assert signed.status_code == 200
    assert "token" in signed.json()
    assert refused.status_code == 401
    for answer in (signed, refused):
        assert answer.headers["cache-control"] == "no-store"
        assert has_every_answer_header(dict(answer.headers))


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", f"/v1/pay/{UNKNOWN_UID}", 404, "order_not_found"),  # the payer's view
        ("GET", "/v1/operator/queue", 401, "missing_session"),
        ("GET", "/v1/balance", 401, "missing_auth_header"),
        ("GET", "/v1/nowhere", 404, "not_found"),
    ],
)
async def test_every_v1_answer_is_not_stored(
    db: Db, migrated_database_url: str, method: str, path: str, status: int, code: str
):
    async with client(light_app(migrated_database_url)) as api:
        answer = await api.request(method, path)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert answer.headers["cache-control"] == "no-store"
    assert has_every_answer_header(dict(answer.headers))


async def test_other_answers_get_the_common_headers_only(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url)) as api:
        health = await api.get("/healthz")
    assert health.status_code == 200
    assert has_every_answer_header(dict(health.headers))
    assert "no-store" not in health.headers.get("cache-control", "")


async def test_the_payment_form_keeps_its_own_csp(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url)) as api:
        page = await api.get(f"/pay/{UNKNOWN_UID}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src" in csp
    assert "cdn.jsdelivr.net" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert has_every_answer_header(dict(page.headers))


async def test_docs_pages_carry_a_restrictive_csp(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url)) as api:
        swagger = await api.get("/docs")
        redoc = await api.get("/redoc")
        spec = await api.get("/openapi.json")
    assert swagger.status_code == redoc.status_code == spec.status_code == 200
    assert "/v1/auth/login" in spec.json()["paths"]
    assert spec.json()["paths"]["/v1/auth/login"]["post"]["responses"]["429"]

    csp = swagger.headers["content-security-policy"]
    inline = re.findall(r"<script>(.*?)</script>", swagger.text, re.DOTALL)
    assert len(inline) == 1
    assert "SwaggerUIBundle" in inline[0]
    [digest] = script_hashes(swagger.text)
    assert f"script-src {SWAGGER_CDN} {digest};" in csp
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-eval'" not in csp
    assert f'src="{SWAGGER_CDN}swagger-ui-bundle.js"' in swagger.text

    redoc_csp = redoc.headers["content-security-policy"]
    assert f"script-src {REDOC_CDN};" in redoc_csp
    assert "default-src 'none'" in redoc_csp
    assert f'src="{REDOC_CDN}bundles/redoc.standalone.js"' in redoc.text
    for page in (swagger, redoc):
        assert has_every_answer_header(dict(page.headers))


@pytest.mark.parametrize(
    "settings", [{"api_docs_public": False}, {"env": "production", "order_id_secret": "s" * 32}]
)
async def test_docs_are_gone_when_not_public(
    db: Db, migrated_database_url: str, settings: dict[str, object]
):
    async with client(light_app(migrated_database_url, **settings)) as api:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            answer = await api.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["error"]["code"] == "not_found"
        assert (await login(api, "olga")).status_code == 200  # the API itself still serves
