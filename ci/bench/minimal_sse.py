"""A minimal SSE chat server in Python's standard library (asyncio), the
peer of the reference server's streams/s benchmark (BENCHMARKS.md): it
answers any request with what refserver's `fast` profile sends (a start
event, 100 token events, a done event), each event its own write, then
closes. No model, caches or metrics: the floor of a Python backend.

    python3 ci/bench/minimal_sse.py PORT
"""

import asyncio
import json
import sys

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
WORDS = 100


def event(name, data):
    return b"event: " + name + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def answer(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = json.loads(await reader.readexactly(length)) if length else {}
        writer.write(HEAD)
        writer.write(event(b"start", {"clientId": body.get("clientId", ""),
                                      "chatbotId": body.get("chatbotId", ""), "streaming": True}))
        for i in range(WORDS):
            writer.write(event(b"token", {"text": f"word{i} "}))
            await writer.drain()
        writer.write(event(b"done", {"wordCount": WORDS, "firstTokenLatency": 0, "duration": 0,
                                     "kbCache": "miss", "ttsCacheHits": 0, "ttsCacheMisses": 0}))
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
