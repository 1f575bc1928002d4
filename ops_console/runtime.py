"""Process-wide resources of the console: settings, the database engine, the API client.

The engine lives in ``st.cache_resource`` (one pool per database URL for the whole server,
shared by every browser session); settings are re-read per run, which costs microseconds and
lets tests point a fresh ``AppTest`` at another database through the environment.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, session_factory
from ops_console.api_client import KeeperApi
from ops_console.settings import ConsoleSettings
from stream_agents.dead_letters import KafkaRepublisher


def settings() -> ConsoleSettings:
    return ConsoleSettings()


@st.cache_resource(show_spinner=False)
def _engine(database_url: str) -> Engine:
    return make_engine(database_url, pool_size=5, max_overflow=5)


def engine() -> Engine:
    return _engine(settings().database_url)


def engine_for(database_url: str) -> Engine:
    return _engine(database_url)


def sessions() -> sessionmaker[Session]:
    return session_factory(engine())


def api() -> KeeperApi:
    current = settings()
    return KeeperApi(current.api_base_url, timeout_s=current.api_timeout_s)


@st.cache_resource(show_spinner=False)
def _republisher(bootstrap: str) -> KafkaRepublisher:
    return KafkaRepublisher(bootstrap)


def republisher() -> KafkaRepublisher:
    """The console's one producer for dead-letter retries (started on the first retry)."""
    return _republisher(settings().kafka_bootstrap_servers)


def drop_engines() -> None:
    """Forget every cached engine (tests call this between databases)."""
    _engine.clear()
