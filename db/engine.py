"""Engine and session construction, kept in one place so pool and session policy is uniform."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from db.settings import DatabaseSettings


def make_engine(url: str | None = None, **kwargs: object) -> Engine:
    """An engine for ``url`` (default: ``DATABASE_URL``).

    ``pool_pre_ping`` because agents hold connections across broker stalls and database
    restarts; a dead pooled connection should be replaced, not surface as a failed payment.
    """
    options: dict[str, object] = {"pool_pre_ping": True}
    options.update(kwargs)
    return create_engine(url or DatabaseSettings().database_url, **options)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit.

    Projectors and the console commit and then report what they wrote; expiring attributes
    on commit would turn that report into surprise round trips (or ``lazy="raise"`` errors).
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
