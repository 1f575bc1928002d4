"""Liveness and readiness: is the process up, and can it reach the broker and the database."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from db.engine import make_engine
from ingest_api.settings import ApiSettings

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    kafka: str
    database: str


def get_settings(request: Request) -> ApiSettings:
    """The app's own settings (``create_app`` keeps them): readiness checks the broker and
    the database the app really uses, not whatever the environment names."""
    settings: ApiSettings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else ApiSettings()


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="The broker and the database answer",
    responses={503: {"model": Readiness}},
)
async def readyz(settings: SettingsDep, response: Response) -> Readiness:
    kafka, database = await asyncio.gather(_check_kafka(settings), _check_database(settings))
    ready = kafka == "ok" and database == "ok"
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="ready" if ready else "unavailable", kafka=kafka, database=database)


async def _check_kafka(settings: ApiSettings) -> str:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(settings.readiness_timeout_s * 1000),
    )
    try:
        await asyncio.wait_for(producer.start(), settings.readiness_timeout_s)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    finally:
        await producer.stop()
    return "ok"


async def _check_database(settings: ApiSettings) -> str:
    def ping() -> None:
        engine = make_engine(
            settings.database_url,
            poolclass=NullPool,
            connect_args={"connect_timeout": max(1, int(settings.readiness_timeout_s))},
        )
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()

    try:
        await asyncio.to_thread(ping)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
