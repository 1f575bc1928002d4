"""The ingest API: FastAPI application factory (``uvicorn ingest_api.app:app``)."""

from __future__ import annotations

from fastapi import FastAPI

from ingest_api import health


def create_app() -> FastAPI:
    app = FastAPI(
        title="Keeper API",
        version="0.1.0",
        summary="P2P payment processing: partner orders, payer form, operator decisions",
    )
    app.include_router(health.router)
    return app


app = create_app()
