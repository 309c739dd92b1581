"""Server-sent events as a test reads them: (event name, parsed data) per block; ``[DONE]`` stays a string."""

from __future__ import annotations

import json


def sse_events(text: str) -> list[tuple[str, object]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events
