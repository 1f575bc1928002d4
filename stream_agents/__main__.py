"""``python -m stream_agents worker -l info``: create the topics, then run the Faust CLI.

Topics are ensured first (idempotently) because the agents' tables must match their source
topics' partition counts, which only the catalogue knows. The loop used for that is left
installed as the current loop, which is the one Faust's worker then runs on.
"""

from __future__ import annotations

import asyncio
import sys

from stream_agents.app import app, prepare
from stream_agents.settings import AgentSettings


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(prepare(AgentSettings()))
    app.main()


if __name__ == "__main__":
    main()
