"""The agents' dead letters carry the same headers as the consumer processes' ones.

Driven through ``agent.test_context()``: Faust hands the agent test events with their own
topic, partition and offset, and the dead letter must name exactly those.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaError
from faust.exceptions import PartitionsMismatch
from faust.topics import Topic

from stream_agents import letter_headers as h
from stream_agents.bus import HandlerRetry, run_handler
from tests.unit.agents.builders import capture_sends, faust_app


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[faust.App]:
    capture_sends(monkeypatch)
    yield from faust_app(tmp_path)


async def test_an_undecodable_command_is_parked_with_its_coordinates_and_raw_value(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    parked: list[dict[str, Any]] = []

    async def send(self: Topic, **fields: Any) -> None:
        parked.append({"topic": self.get_topic_name()} | fields)

    monkeypatch.setattr(Topic, "send", send)
    async with app.agents["desk"].test_context() as agent:
        await agent.put(key=b"k-1", value=b"ok")  # offset 0: garbage too
        event = await agent.put(key=b"k-2", value=b"{not json\x00")
    letter = parked[-1]
    headers = dict(letter["headers"])
    assert letter["topic"].endswith("dead-letters")
    assert (letter["key"], letter["value"]) == (b"order-commands", b"{not json\x00")
    assert headers[h.SOURCE_TOPIC] == event.message.topic.encode()
    assert headers[h.SOURCE_PARTITION] == str(event.message.partition).encode()
    assert headers[h.SOURCE_OFFSET] == str(event.message.offset).encode()
    assert headers[h.SOURCE_KEY] == b"k-2"
    assert headers[h.CONSUMER] == str(app.conf.id).encode()
    assert headers[h.ERROR].startswith(b"undecodable: ")
    assert [dict(p["headers"])[h.SOURCE_OFFSET] for p in parked] == [
        str(event.message.offset - 1).encode(),
        str(event.message.offset).encode(),
    ]


# --- transient handler failures are run again, not parked ---------------------------------

QUICK = HandlerRetry(attempts=4, first_s=0.001, max_s=0.002)


def flaky(failures: list[Exception]) -> Any:
    """A handler that raises each of ``failures`` once, then answers; it counts its calls."""

    def handler(env: Any, message: Any) -> list[Any]:
        handler.calls += 1  # type: ignore[attr-defined]
        if failures:
            raise failures.pop(0)
        return ["sent"]

    handler.calls = 0  # type: ignore[attr-defined]
    return handler


def mismatch() -> PartitionsMismatch:
    return PartitionsMismatch("changelog has 1 partition while the broker is away")


async def test_a_metadata_gap_during_a_table_write_is_run_again_not_parked() -> None:
    handler = flaky([mismatch(), KafkaError()])
    env = SimpleNamespace(type="card.movement", message_id="m-1")
    assert await run_handler(handler, env, object(), QUICK) == ["sent"]  # type: ignore[arg-type]
    assert handler.calls == 3


async def test_a_failure_that_lasts_past_the_retries_propagates_to_be_parked() -> None:
    handler = flaky([mismatch() for _ in range(QUICK.attempts)])
    env = SimpleNamespace(type="card.movement", message_id="m-1")
    with pytest.raises(PartitionsMismatch):
        await run_handler(handler, env, object(), QUICK)  # type: ignore[arg-type]
    assert handler.calls == QUICK.attempts


async def test_a_bug_is_not_run_again() -> None:
    handler = flaky([KeyError("card")])
    env = SimpleNamespace(type="card.movement", message_id="m-1")
    with pytest.raises(KeyError):
        await run_handler(handler, env, object(), QUICK)  # type: ignore[arg-type]
    assert handler.calls == 1
