#!/usr/bin/python3
"""A tiny ticket API that the examples in docs/*.md call (through EXAMPLE_API_BASE), for tests.

Usage: example_api.py PORT [--lifetime SECONDS]   (binds 127.0.0.1:PORT, exits by itself)

  GET    /tickets?status=S        the tickets, optionally only those with status S
  GET    /tickets/ID              one ticket, or 404 {"error": "no such ticket"}
  POST   /tickets                 JSON {subject, requester} -> 201 the new ticket
  PATCH  /tickets/ID              JSON fields to change -> the ticket
  DELETE /tickets/ID              204
  GET    /flaky?id=X              503 with Retry-After: 0 on the first request with id X, then 200
  GET    /whoami                  200 {"user": ...} only with "Authorization: Bearer <token>"
  *      /echo                    the request as JSON (method, path, query, headers, body)
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
TICKETS = {
    1: {"id": 1, "subject": "Cannot log in", "requester": "ana@example.com",
        "status": "open", "priority": "high"},
    2: {"id": 2, "subject": "Invoice address", "requester": "li@example.com",
        "status": "pending", "priority": "normal"},
    3: {"id": 3, "subject": "Export to CSV", "requester": "sam@example.com",
        "status": "open", "priority": "low"},
}
NEXT_ID = [4]
FLAKY_SEEN = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, doc=None, headers=None):
        body = b"" if doc is None else (json.dumps(doc) + "\n").encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        raw = self.body()
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/echo":
            return self.reply(200, {"method": self.command, "path": url.path, "query": query,
                                    "headers": dict(self.headers.items()),
                                    "body": raw.decode("utf-8", "replace")})
        if url.path == "/flaky":
            with LOCK:
                first = query.get("id") not in FLAKY_SEEN
                FLAKY_SEEN.add(query.get("id"))
            if first:
                return self.reply(503, {"error": "try again"}, {"Retry-After": "0"})
            return self.reply(200, {"ok": True})
        if url.path == "/whoami":
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or len(auth) <= 7:
                return self.reply(401, {"error": "no token"})
            return self.reply(200, {"user": "support-bot"})
        if not parts or parts[0] != "tickets" or len(parts) > 2:
            return self.reply(404, {"error": "not found"})
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, {"error": "malformed JSON"})
        with LOCK:
            if len(parts) == 1:
                if self.command == "GET":
                    rows = [t for t in TICKETS.values()
                            if "status" not in query or t["status"] == query["status"]]
                    return self.reply(200, rows)
                if self.command == "POST":
                    if not doc.get("subject"):
                        return self.reply(422, {"error": "subject is required"})
                    t = {"id": NEXT_ID[0], "subject": doc["subject"],
                         "requester": doc.get("requester"), "status": "new",
                         "priority": doc.get("priority", "normal")}
                    TICKETS[t["id"]] = t
                    NEXT_ID[0] += 1
                    return self.reply(201, t)
                return self.reply(405, {"error": "method not allowed"})
            try:
                t = TICKETS[int(parts[1])]
            except (ValueError, KeyError):
                return self.reply(404, {"error": "no such ticket"})
            if self.command == "GET":
                return self.reply(200, t)
            if self.command in ("PATCH", "PUT"):
                t.update({k: v for k, v in doc.items() if k != "id"})
                return self.reply(200, t)
            if self.command == "DELETE":
                del TICKETS[t["id"]]
                return self.reply(204)
            return self.reply(405, {"error": "method not allowed"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--lifetime", type=float, default=120)
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    threading.Timer(a.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
