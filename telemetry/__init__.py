"""What every Keeper process shares to be observed: Prometheus exposition and structured logs.

* :mod:`telemetry.exposition`: the metrics settings (``KEEPER_METRICS_*``) and, for a process
  without an HTTP server of its own, prometheus-client's HTTP server on a loopback port;
* :mod:`telemetry.logs`: one JSON object per log line (human-readable on a terminal), with
  the request id and the order uid of the work in hand (ADR 0009).

Metric definitions live beside the code they measure (``ingest_api.metrics``,
``stream_agents.metrics``, ``stream_agents.desk.metrics``); docs/operations.md lists them.
"""
