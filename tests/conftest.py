"""Test plumbing shared by every tier.

Service fixtures live in ``tests/fixtures``: each one prefers an explicitly configured
service, then a testcontainers container when a Docker engine answers, then the project's
own local service (started through ``infra/``). Under ``CI=true`` a service that cannot be
had is a failure, never a skip.
"""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.postgres",
    "tests.fixtures.system",
    "tests.fixtures.stack",
    "tests.fixtures.browser",
    "tests.fixtures.console",
    "tests.fixtures.portal",
    "tests.fixtures.observed",
    "tests.fixtures.fake_metrics",
]
