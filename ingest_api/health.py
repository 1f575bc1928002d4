"""Liveness and readiness: is the process up, and is the platform doing its work?

``/readyz`` is ready only when the broker and the database answer, the process's own
background reader (the order-events feed: outcomes and payment forms) is up, and no pipeline
consumer has halted, stalled or is falling behind (:mod:`ingest_api.pipeline_health`, sampled
in the background: the endpoint never waits for it). ``?scope=process`` leaves the pipeline
out of the verdict (it is still reported): what a supervisor waits for when it starts this
process, whatever the other parts are doing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from db.engine import make_engine
from ingest_api.deps import Services
from ingest_api.pipeline_health import PipelineReport
from ingest_api.settings import ApiSettings

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Problem(BaseModel):
    """A part that keeps the platform from being ready, and why."""

    part: str
    reason: str


class GroupHealth(BaseModel):
    part: str
    group: str
    verdict: str
    reason: str
    members: int | None
    lag: int
    last_progress_at: datetime | None = Field(
        description="when the group's committed offsets last moved (UTC)"
    )


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    kafka: str
    database: str
    #: The process's own background readers: "ok" or why not.
    readers: dict[str, str] = {}
    #: Each pipeline consumer group as last sampled (empty until the first sample).
    pipeline: list[GroupHealth] = []
    problems: list[Problem] = []


def get_settings(request: Request) -> ApiSettings:
    """The app's own settings (``create_app`` keeps them): readiness checks the broker and
    the database the app really uses, not whatever the environment names."""
    settings: ApiSettings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else ApiSettings()


def get_running_services(request: Request) -> Services | None:
    """The process's services once started (None before, or in an app without them)."""
    return getattr(request.app.state, "services", None)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
RunningServices = Annotated[Services | None, Depends(get_running_services)]


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="The broker and the database answer, and the pipeline keeps up",
    responses={503: {"model": Readiness}},
)
async def readyz(
    settings: SettingsDep,
    services: RunningServices,
    response: Response,
    scope: Annotated[
        Literal["all", "process"],
        Query(description="`process`: judge only this process, report the pipeline"),
    ] = "all",
) -> Readiness:
    kafka, database = await asyncio.gather(_check_kafka(settings), _check_database(settings))
    problems = [
        Problem(part=name, reason=v)
        for name, v in (("kafka", kafka), ("database", database))
        if v != "ok"
    ]
    readers = {r.name: r.reason() for r in services.readers()} if services else {}
    problems += [Problem(part=name, reason=why) for name, why in readers.items() if why != "ok"]
    pipeline: list[GroupHealth] = []
    if services is not None and services.pipeline is not None:
        report = services.pipeline.report()
        pipeline = group_health(report)
        if scope == "all":
            problems += pipeline_problems(report, services.pipeline.settings.stall_after_s)
    if problems:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(
        status="unavailable" if problems else "ready",
        kafka=kafka,
        database=database,
        readers=readers,
        pipeline=pipeline,
        problems=problems,
    )


def group_health(report: PipelineReport) -> list[GroupHealth]:
    return [
        GroupHealth(
            part=v.label,
            group=v.group_id,
            verdict=v.verdict.value,
            reason=v.reason,
            members=v.members,
            lag=v.lag,
            last_progress_at=(
                None
                if v.last_progress_s is None
                else datetime.fromtimestamp(v.last_progress_s, UTC)
            ),
        )
        for v in report.verdicts
    ]


def pipeline_problems(report: PipelineReport, blind_after_s: float) -> list[Problem]:
    """Groups that halted, stalled or fall behind; and a monitor blind for too long."""
    problems = [
        Problem(part=v.label, reason=f"{v.verdict.value}: {v.reason} (group {v.group_id})")
        for v in report.failing
    ]
    if report.error is not None and report.blind_s >= blind_after_s:
        problems.append(
            Problem(
                part="pipeline",
                reason=f"not sampled for {report.blind_s:.0f} s: {report.error}",
            )
        )
    return problems


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
