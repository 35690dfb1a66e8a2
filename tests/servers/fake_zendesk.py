#!/usr/bin/python3
"""A fake Zendesk (and Slack incoming webhook) for the poll tests. Standard library only.

    fake_zendesk.py --port N [--page-size 2] [--timeout 120] [--email E --token T]

Zendesk:
  GET  /api/v2/incremental/tickets/cursor.json?start_time=UNIX | ?cursor=C [&per_page=N]
       the cursor-based incremental export: tickets in the order they were last changed,
       {tickets, after_cursor, after_url, before_cursor, end_of_stream}; a page holds
       --page-size tickets unless per_page says fewer. Basic auth "EMAIL/token:TOKEN".
  GET  /api/v2/tickets/ID.json, PUT /api/v2/tickets/ID.json ({ticket: {...}}: additional_tags,
       remove_tags, tags and other fields; a change moves the ticket to the end of the export,
       as in Zendesk)
Slack:
  POST /slack/webhook   records the JSON body, answers "ok"
Test control:
  POST /admin/tickets   {subject, description, priority, ...} -> the new ticket
  POST /admin/fail      {count, status, retryAfter}: the next count export requests fail;
                        {seconds, status}: every export request fails for that long
  POST /admin/latency   {ms}: every answer waits this long
  GET  /admin/state     {tickets, updates, slack, exportRequests, failed}

Binds 127.0.0.1 only and exits by itself after --timeout seconds.
"""
import argparse
import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {
    "tickets": {},      # id -> ticket
    "log": [],          # change sequence: ticket ids, one entry per change (latest wins)
    "next_id": 1,
    "updates": [],      # PUT bodies: {id, ticket}
    "slack": [],        # Slack webhook bodies
    "export_requests": 0,
    "fail": {"count": 0, "status": 503, "retry_after": None, "until": 0},
    "failed": 0,
    "latency_ms": 0,
}
ARGS = None


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def touch(ticket_id):
    """Records a change: the ticket moves to the end of the export."""
    STATE["log"].append(ticket_id)


def export_from(pos, per_page):
    """Tickets changed after position pos (an index into the change log), latest change only."""
    log = STATE["log"]
    last_pos = {}
    for i, tid in enumerate(log):
        last_pos[tid] = i
    entries = sorted((p, tid) for tid, p in last_pos.items() if p >= pos)
    page = entries[:per_page]
    end = len(entries) <= per_page
    new_pos = page[-1][0] + 1 if page else pos
    return [STATE["tickets"][tid] for _, tid in page], new_pos, end


def encode_cursor(pos):
    return base64.urlsafe_b64encode(("pos:%d" % pos).encode()).decode()


def decode_cursor(c):
    try:
        text = base64.urlsafe_b64decode(c.encode()).decode()
        m = re.fullmatch(r"pos:(\d+)", text)
        return int(m.group(1)) if m else None
    except Exception:
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, doc, headers=None):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw.decode() or "{}")
        except ValueError:
            return None

    def authorized(self):
        want = "%s/token:%s" % (ARGS.email, ARGS.token)
        got = self.headers.get("Authorization", "")
        if not got.startswith("Basic "):
            return False
        try:
            return base64.b64decode(got[6:]).decode() == want
        except Exception:
            return False

    def pause(self):
        with LOCK:
            ms = STATE["latency_ms"]
        if ms:
            time.sleep(ms / 1000.0)

    def do_GET(self):
        self.pause()
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/admin/state":
            with LOCK:
                doc = {
                    "tickets": sorted(STATE["tickets"].values(), key=lambda t: t["id"]),
                    "updates": STATE["updates"],
                    "slack": STATE["slack"],
                    "exportRequests": STATE["export_requests"],
                    "failed": STATE["failed"],
                }
            return self.send_json(200, doc)
        if not self.authorized():
            return self.send_json(401, {"error": "Couldn't authenticate you"})
        if url.path == "/api/v2/incremental/tickets/cursor.json":
            with LOCK:
                STATE["export_requests"] += 1
                f = STATE["fail"]
                if f["count"] > 0 or time.time() < f["until"]:
                    f["count"] = max(f["count"] - 1, 0)
                    STATE["failed"] += 1
                    headers = {}
                    if f["retry_after"] is not None:
                        headers["Retry-After"] = str(f["retry_after"])
                    return self.send_json(f["status"], {"error": "failing on purpose"}, headers)
                per_page = min(int(q.get("per_page", ARGS.page_size)), ARGS.page_size)
                if "cursor" in q:
                    pos = decode_cursor(q["cursor"])
                    if pos is None:
                        return self.send_json(400, {"error": "InvalidCursor"})
                elif "start_time" in q:
                    start = int(q["start_time"])
                    if start > time.time() - 60:
                        return self.send_json(422, {"error": "InvalidValue",
                                                    "description": "start_time is too recent"})
                    pos = len(STATE["log"])
                    for i, tid in enumerate(STATE["log"]):
                        if STATE["tickets"][tid]["_updated"] >= start:
                            pos = i
                            break
                else:
                    return self.send_json(400, {"error": "start_time or cursor is required"})
                tickets, new_pos, end = export_from(pos, per_page)
                after = encode_cursor(new_pos)
                base = "http://127.0.0.1:%d" % ARGS.port
                doc = {
                    "tickets": [{k: v for k, v in t.items() if not k.startswith("_")}
                                for t in tickets],
                    "after_cursor": after,
                    "after_url": base + url.path + "?cursor=" + after,
                    "before_cursor": encode_cursor(pos),
                    "before_url": None,
                    "end_of_stream": end,
                }
            return self.send_json(200, doc)
        m = re.fullmatch(r"/api/v2/tickets/(\d+)\.json", url.path)
        if m:
            with LOCK:
                t = STATE["tickets"].get(int(m.group(1)))
                doc = {k: v for k, v in t.items() if not k.startswith("_")} if t else None
            if doc is None:
                return self.send_json(404, {"error": "RecordNotFound"})
            return self.send_json(200, {"ticket": doc})
        return self.send_json(404, {"error": "InvalidEndpoint"})

    def do_PUT(self):
        self.pause()
        url = urlsplit(self.path)
        if not self.authorized():
            return self.send_json(401, {"error": "Couldn't authenticate you"})
        m = re.fullmatch(r"/api/v2/tickets/(\d+)\.json", url.path)
        body = self.read_json()
        if not m or not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
            return self.send_json(400, {"error": "expected {ticket: {...}}"})
        tid = int(m.group(1))
        with LOCK:
            t = STATE["tickets"].get(tid)
            if t is None:
                return self.send_json(404, {"error": "RecordNotFound"})
            STATE["updates"].append({"id": tid, "ticket": body["ticket"]})
            for k, v in body["ticket"].items():
                if k == "additional_tags":
                    t["tags"] = t["tags"] + [x for x in v if x not in t["tags"]]
                elif k == "remove_tags":
                    t["tags"] = [x for x in t["tags"] if x not in v]
                else:
                    t[k] = v
            now = time.time()
            t["_updated"] = now
            t["updated_at"] = iso(now)
            touch(tid)
            doc = {k: v for k, v in t.items() if not k.startswith("_")}
        return self.send_json(200, {"ticket": doc})

    def do_POST(self):
        self.pause()
        url = urlsplit(self.path)
        body = self.read_json()
        if body is None:
            return self.send_json(400, {"error": "malformed JSON"})
        if url.path == "/slack/webhook":
            with LOCK:
                STATE["slack"].append(body)
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if url.path == "/admin/tickets":
            with LOCK:
                tid = STATE["next_id"]
                STATE["next_id"] += 1
                now = time.time()
                created = body.pop("createdAgo", 0)
                t = {
                    "id": tid,
                    "url": "http://127.0.0.1:%d/api/v2/tickets/%d.json" % (ARGS.port, tid),
                    "subject": "",
                    "description": "",
                    "priority": "normal",
                    "status": "new",
                    "tags": [],
                    "created_at": iso(now - created),
                    "updated_at": iso(now),
                    "_updated": now,
                }
                t.update(body)
                STATE["tickets"][tid] = t
                touch(tid)
                doc = {k: v for k, v in t.items() if not k.startswith("_")}
            return self.send_json(201, {"ticket": doc})
        if url.path == "/admin/fail":
            with LOCK:
                STATE["fail"] = {"count": int(body.get("count", 1)),
                                 "status": int(body.get("status", 503)),
                                 "retry_after": body.get("retryAfter"),
                                 "until": time.time() + float(body.get("seconds", 0))}
            return self.send_json(200, {"ok": True})
        if url.path == "/admin/latency":
            with LOCK:
                STATE["latency_ms"] = int(body.get("ms", 0))
            return self.send_json(200, {"ok": True})
        return self.send_json(404, {"error": "InvalidEndpoint"})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--page-size", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--email", default="agent@example.com")
    p.add_argument("--token", default="zd-token")
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    t = threading.Timer(ARGS.timeout, srv.shutdown)
    t.daemon = True
    t.start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
