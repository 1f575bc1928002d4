"""Baseline (c): the three requests of an order's life answered by a FastAPI app that does no
work (issue 13, part 5).

The same paths, methods and headers as Keeper's API (the partner's signed create, the
payer's confirm, the operator's decision, and the sign-in that hands out the operator's
token), each answered with a fixed body: no signature check, no database, no Kafka. Run
under uvicorn as Keeper's API is (``infra/keeper.sh``), without the access log, and driven by
the same load generator as Keeper, it is the floor that the HTTP layer and the generator set
on this machine.

    .venv/bin/uvicorn bench.null_api:app --port 8099 --no-access-log
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

UID = "00000000-0000-4000-8000-000000000000"
CREATED = {
    "uid": UID,
    "status": "new",
    "amount_minor": 10_000,
    "currency": "RUB",
    "card": {"bank": "Test Bank", "holder": "TEST HOLDER", "pan": "4000000000000002"},
}

app = FastAPI(title="null API (benchmark baseline)", docs_url=None, redoc_url=None)


@app.post("/v1/auth/login")
async def login() -> dict[str, Any]:
    return {"token": "null-token", "role": "operator"}


@app.post("/v1/orders", status_code=201)
async def create(request: Request) -> JSONResponse:
    await request.body()  # read like an endpoint that validates it would
    return JSONResponse(CREATED, status_code=201)


@app.post("/v1/pay/{uid}/confirm")
async def confirm(uid: str) -> dict[str, Any]:
    return {"uid": uid, "status": "processing"}


@app.post("/v1/operator/orders/{uid}/decision")
async def decide(uid: str) -> dict[str, Any]:
    return {"uid": uid, "status": "approved"}
