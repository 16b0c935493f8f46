"""An OpenAI-Agents-style session on runjournal: the conversation history an
agent loop reads and extends, append-only (an undo is a `pop` event).

    python agents_session.py --db /tmp/session.db

With the SDK, pass the session to the runner as any other session:
`Runner.run(agent, "hi", session=RunjournalSession("user-42", journal))`.
This example drives it the way the runner does, with a stand-in model, so it
runs offline.
"""

import argparse
import asyncio
import json
import sys

import runjournal
from runjournal.openai_agents import RunjournalSession


def stand_in_model(history: list) -> dict:
    last = history[-1]["content"] if history else ""
    return {"role": "assistant", "content": f"you said {last!r} ({len(history)} items so far)"}


async def turn(session: RunjournalSession, text: str) -> dict:
    await session.add_items([{"role": "user", "content": text}])
    reply = stand_in_model(await session.get_items())
    await session.add_items([reply])
    return reply


async def main_async(db: str) -> int:
    journal = runjournal.Journal.open(db)
    session = RunjournalSession("user-42", journal)
    await turn(session, "hello")
    await turn(session, "what is a hash chain?")
    await session.pop_item()  # the user regenerates the last answer
    await session.add_items([stand_in_model(await session.get_items())])
    history = await session.get_items()
    audit = [e.event.kind for e in journal.read(session.key) if e.event.type == "custom"]
    print(json.dumps({"items": len(history), "last_two": await session.get_items(limit=2), "audit": audit}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    return asyncio.run(main_async(parser.parse_args().db))


if __name__ == "__main__":
    sys.exit(main())
