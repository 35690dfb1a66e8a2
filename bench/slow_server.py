#!/usr/bin/python3
"""A slow local HTTP API for bench/suspended_http.sh: every request is answered 200 {"ok": true}
after DELAY seconds, on as many connections at once as the clients open.
Usage: slow_server.py PORT [DELAY_SECONDS] [LIFETIME_SECONDS]   (binds 127.0.0.1; stops by
itself after LIFETIME, default 300 s)."""
import asyncio
import sys

PORT = int(sys.argv[1])
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
LIFETIME = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
BODY = b'{"ok":true}'
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
          % (len(BODY), BODY))


async def client(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(DELAY)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(client, "127.0.0.1", PORT, backlog=4096)
    async with server:
        await asyncio.sleep(LIFETIME)


asyncio.run(main())
