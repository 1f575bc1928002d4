"""Metrics exposition: the settings every process reads, and the HTTP server of the processes
that have none of their own.

The API serves ``/metrics`` on its own port and the agents on their Faust web server. The
projector, card projector, callbacks and reconciler start prometheus-client's HTTP server
(:func:`serve`) on a loopback port of their own, ``KEEPER_METRICS_<PROCESS>_PORT``.
``KEEPER_METRICS_ENABLED=false`` turns exposition (and the work behind it that is not free,
such as the desk's census) off everywhere: the benchmark's "metrics off" run.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Final, Literal

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

Process = Literal["projector", "card_projector", "callbacks", "reconciler"]

#: Default ports of the processes without an HTTP server (documented in the README).
DEFAULT_PORTS: Final[dict[str, int]] = {
    "projector": 9401,
    "card_projector": 9402,
    "callbacks": 9403,
    "reconciler": 9404,
}


class MetricsSettings(BaseSettings):
    """``KEEPER_METRICS_*``: whether metrics are kept and where they are served."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_METRICS_", extra="ignore")

    enabled: bool = True
    #: Where the processes without an HTTP server listen (loopback by default).
    host: str = "127.0.0.1"
    projector_port: int = Field(DEFAULT_PORTS["projector"], ge=0, le=65535)
    card_projector_port: int = Field(DEFAULT_PORTS["card_projector"], ge=0, le=65535)
    callbacks_port: int = Field(DEFAULT_PORTS["callbacks"], ge=0, le=65535)
    reconciler_port: int = Field(DEFAULT_PORTS["reconciler"], ge=0, le=65535)
    #: Who may read the API's ``/metrics`` (it shares the API's public port): addresses or
    #: networks, comma-separated; anyone else gets ``404``. Loopback by default.
    allow: str = "127.0.0.0/8,::1/128"
    #: How often the agents count their table (orders by state, open orders per pool...).
    census_interval_s: float = Field(15.0, gt=0)

    def allowed(self, address: str | None) -> bool:
        """May ``address`` (the TCP peer) read ``/metrics`` on the API's port?"""
        if address is None:
            return False
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(
            peer in ipaddress.ip_network(net.strip(), strict=False)
            for net in self.allow.split(",")
            if net.strip()
        )

    def port(self, process: Process) -> int | None:
        """The process's port (None for a process that has no port setting yet)."""
        port: int | None = getattr(self, f"{process}_port", None)
        return port


def serve(
    process: Process,
    settings: MetricsSettings | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> int | None:
    """Serve ``registry`` for ``process`` on its port (a daemon thread); returns the port, or
    None when metrics are off. Port 0 picks a free one (tests)."""
    settings = settings or MetricsSettings()
    if not settings.enabled:
        log.info("%s: metrics off (KEEPER_METRICS_ENABLED=false)", process)
        return None
    wanted = settings.port(process)
    if wanted is None:
        log.warning("%s: no metrics port setting; running without /metrics", process)
        return None
    try:
        server, _ = start_http_server(wanted, settings.host, registry)
    except OSError as exc:  # the port is taken: the process's work matters more than metrics
        log.error(
            "%s: cannot serve metrics on %s:%d (%s); running without /metrics",
            process,
            settings.host,
            wanted,
            exc.strerror or exc,
        )
        return None
    port = int(server.server_address[1])
    log.info("%s: metrics on http://%s:%d/metrics", process, settings.host, port)
    return port
