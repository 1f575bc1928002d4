"""The agents' dead letters carry the same headers as the consumer processes' ones.

Driven through ``agent.test_context()``: Faust hands the agent test events with their own
topic, partition and offset, and the dead letter must name exactly those.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.topics import Topic

from stream_agents import letter_headers as h
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
    async with app.agents["order-agent"].test_context() as agent:
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
