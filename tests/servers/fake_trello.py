#!/usr/bin/python3
"""A local stand-in for the Trello REST API (the parts plugins/trello.js uses), for tests.

Usage: fake_trello.py PORT [options]   (binds 127.0.0.1:PORT, exits by itself after --lifetime)

Trello-like endpoints under /1 (key and token required as query parameters):
  GET  /1/organizations/ORG/boards?filter=open|closed|all&fields=a,b
  GET  /1/members/ID|USERNAME|me/boards?filter=...
  GET  /1/boards/ID             GET /1/boards/ID/members     GET /1/boards/ID/memberships
  PUT  /1/boards/ID/members?email=E&type=T        PUT /1/boards/ID/members/IDMEMBER?type=T
  GET  /1/boards/ID/cards?limit=N&before=ID (pages of at most 1000, newest first)
  GET  /1/lists/ID/cards        POST /1/cards?idList=ID&name=N
  GET  /1/search/members?query=Q
Per-token rate limit (a sliding window, like Trello's): over --rate requests in --per seconds
answers 429 with Retry-After. Wrong key or token answers 401 ("invalid key"/"invalid token").

Test helpers (no auth, not rate limited):
  /__echo            the request as JSON (method, path, query, headers, body)
  /__status?code=N&times=K&id=X&retry_after=S&retry_date=S
                     answers N for the first K requests with that id, then 200
  /__slow?ms=N       /__big?bytes=N     /__invalid_json    /__gzip
  /__redirect?to=URL&code=302
  /__times?id=X      arrival times (server clock, seconds) of /__status requests with id X
  /__stats           counters: requests, methods, puts, max_concurrency, 429s, 5xx, 401s,
                     members of every board, API arrival times
"""
import argparse
import gzip
import json
import math
import os
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def make_id(prefix, n):
    """A 24-hex-digit id like Trello's; the prefix tells kinds apart when debugging."""
    return prefix + format(n, "022x")


class State:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.accounts = {}   # id -> {id, username, fullName, email, confirmed}
        self.boards = {}     # id -> board dict
        self.board_order = []
        self.orgs = {}       # name -> {id, name, boards: [ids]}
        self.lists = {}      # list id -> board id
        self.cards = {}      # card id -> card
        self.next_card = 1
        self.next_account = 100
        self.next_membership = 0
        self.requests = 0
        self.test_requests = 0
        self.methods = {}
        self.puts = 0
        self.inflight = 0
        self.max_concurrency = 0
        self.sent_429 = 0
        self.sent_5xx = 0
        self.sent_401 = 0
        self.gzip_sent = 0
        self.api_arrivals = []
        self.windows = {}    # token -> deque of arrival times
        self.status_hits = {}  # id -> count
        self.status_times = {}  # id -> [times]
        self.t0 = time.monotonic()

        for n, (user, full, email) in enumerate([
                ("alice", "Alice Admin", "alice@example.com"),
                ("sam", "Sam Support", "sam@example.com"),
                ("pat", "Pat Partner", "pat@example.com")]):
            aid = make_id("a0", n + 1)
            self.accounts[aid] = {"id": aid, "username": user, "fullName": full,
                                  "email": email, "confirmed": True}
        alice = self.account_by("email", "alice@example.com")
        org = {"id": make_id("0c", 1), "name": a.org, "displayName": a.org, "boards": []}
        self.orgs[a.org] = org
        for i in range(1, a.boards + 1):
            bid = make_id("b0", i)
            closed = a.closed_every > 0 and i % a.closed_every == 0
            board = {"id": bid, "name": "Board %03d" % i, "desc": "", "closed": closed,
                     "idOrganization": org["id"], "url": "https://trello.test/b/%s" % bid,
                     "memberships": [{"id": make_id("e0", i * 10), "idMember": alice["id"],
                                      "memberType": "admin", "unconfirmed": False,
                                      "deactivated": False}]}
            self.boards[bid] = board
            self.board_order.append(bid)
            org["boards"].append(bid)
            lid = make_id("10", i)
            self.lists[lid] = bid
            board["lists"] = [{"id": lid, "name": "To do", "idBoard": bid}]
        for spec in a.member_on:
            email, _, count = spec.partition("=")
            acc = self.account_by("email", email)
            open_boards = [b for b in self.board_order if not self.boards[b]["closed"]]
            for bid in open_boards[:int(count or "0")]:
                self.add_membership(bid, acc["id"], "normal")
        if self.board_order:
            first = self.board_order[0]
            for _ in range(a.cards):
                self.new_card(self.boards[first]["lists"][0]["id"], "Card %d" % self.next_card, "")

    def account_by(self, field, value):
        for acc in self.accounts.values():
            if acc[field].lower() == value.lower():
                return acc
        return None

    def add_membership(self, bid, aid, mtype):
        board = self.boards[bid]
        for m in board["memberships"]:
            if m["idMember"] == aid:
                m["memberType"] = mtype
                return
        self.next_membership += 1
        board["memberships"].append({"id": make_id("e1", self.next_membership),
                                     "idMember": aid, "memberType": mtype,
                                     "unconfirmed": not self.accounts[aid]["confirmed"],
                                     "deactivated": False})

    def new_card(self, lid, name, desc):
        cid = make_id("c0", self.next_card)
        self.next_card += 1
        card = {"id": cid, "name": name, "desc": desc, "idList": lid, "idBoard": self.lists[lid],
                "closed": False}
        self.cards[cid] = card
        return card

    def member_view(self, aid):
        acc = self.accounts[aid]
        return {"id": acc["id"], "username": acc["username"], "fullName": acc["fullName"]}


FIELDS = ("id", "name", "desc", "closed", "idOrganization", "url", "memberships")


def board_view(board, fields):
    if fields is None or fields == "all":
        keys = FIELDS
    else:
        keys = ["id"] + [f for f in fields.split(",") if f in FIELDS and f != "id"]
    return {k: board[k] for k in keys}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # listen() backlog: benchmarks open many connections at once


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "FakeTrello/1.0"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing ----

    def reply(self, code, body, ctype="application/json; charset=utf-8", headers=None):
        if not isinstance(body, (bytes, bytearray)):
            if ctype.startswith("application/json"):
                body = json.dumps(body).encode()
            else:
                body = str(body).encode()
        # One write per response, without http.server's per-response Date formatting: the
        # benchmark runs thousands of calls through this server and measures the client.
        head = ["HTTP/1.1 %d %s" % (code, self.responses.get(code, ("",))[0]),
                "Server: FakeTrello/1.0", "Content-Type: " + ctype,
                "Content-Length: %d" % len(body)]
        head += ["%s: %s" % kv for kv in (headers or {}).items()]
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        # Sent by handle_any() once every lock is released: a reply is often made while the
        # state lock is held, and the latency wait must not serialize the requests.
        self.out = data if self.command == "HEAD" else data + body

    def send_out(self):
        # The answer leaves --latency-ms after the request arrived, however long the work took.
        wait = self.deadline - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if self.out is not None:
            self.wfile.write(self.out)
            self.out = None

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        st = self.server.state
        url = urlsplit(self.path)
        self.qall = parse_qs(url.query, keep_blank_values=True)
        self.q = {k: v[0] for k, v in self.qall.items()}
        self.raw_body = self.read_body()
        self.deadline = 0
        self.out = None
        path = url.path
        watch = path not in ("/__stats", "/__times")
        if watch:
            with st.lock:
                st.inflight += 1
                st.max_concurrency = max(st.max_concurrency, st.inflight)
        try:
            if path.startswith("/__"):
                if watch:
                    with st.lock:
                        st.test_requests += 1
                self.test_endpoint(path)
            else:
                self.api(path)
            self.send_out()
        finally:
            if watch:
                with st.lock:
                    st.inflight -= 1

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    # ---- test helpers ----

    def test_endpoint(self, path):
        st = self.server.state
        q = self.q
        if path == "/__echo":
            self.reply(200, {"method": self.command, "path": urlsplit(self.path).path,
                             "query": self.qall,
                             "headers": {k.lower(): v for k, v in self.headers.items()},
                             "body": self.raw_body.decode("utf-8", "replace")})
        elif path == "/__status":
            sid = q.get("id", "")
            now = time.monotonic() - st.t0
            with st.lock:
                hits = st.status_hits.get(sid, 0) + 1
                st.status_hits[sid] = hits
                st.status_times.setdefault(sid, []).append(now)
            times = int(q.get("times", "-1"))
            if times < 0 or hits <= times:
                code = int(q.get("code", "500"))
                headers = {}
                if "retry_after" in q:
                    headers["Retry-After"] = q["retry_after"]
                if "retry_date" in q:
                    at = time.time() + float(q["retry_date"])
                    headers["Retry-After"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                           time.gmtime(math.ceil(at)))
                self.reply(code, {"error": "injected", "hit": hits}, headers=headers)
            else:
                self.reply(200, {"ok": True, "hits": hits})
        elif path == "/__slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            self.reply(200, {"slept": int(q.get("ms", "1000"))})
        elif path == "/__big":
            self.reply(200, b"x" * int(q.get("bytes", "1000")), ctype="text/plain")
        elif path == "/__invalid_json":
            self.reply(200, b'{"not": json', ctype="application/json")
        elif path == "/__gzip":
            body = json.dumps({"hello": "world", "pad": "a" * 5000}).encode()
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                with st.lock:
                    st.gzip_sent += 1
                self.reply(200, gzip.compress(body), headers={"Content-Encoding": "gzip"})
            else:
                self.reply(200, body)
        elif path == "/__redirect":
            self.reply(int(q.get("code", "302")), b"", ctype="text/plain",
                       headers={"Location": q.get("to", "/__echo")})
        elif path == "/__times":
            with st.lock:
                self.reply(200, st.status_times.get(q.get("id", ""), []))
        elif path == "/__stats":
            with st.lock:
                members = {}
                for bid in st.board_order:
                    b = st.boards[bid]
                    members[b["name"]] = sorted(st.accounts[m["idMember"]]["username"]
                                                for m in b["memberships"])
                self.reply(200, {"requests": st.requests, "test_requests": st.test_requests,
                                 "methods": st.methods, "puts": st.puts,
                                 "max_concurrency": st.max_concurrency,
                                 "sent_429": st.sent_429, "sent_5xx": st.sent_5xx,
                                 "sent_401": st.sent_401, "gzip_sent": st.gzip_sent,
                                 "members": members, "cards": len(st.cards),
                                 "arrivals": st.api_arrivals})
        else:
            self.reply(404, {"error": "no such test endpoint"})

    # ---- the Trello API ----

    def api(self, path):
        st = self.server.state
        a = st.a
        now = time.monotonic() - st.t0
        self.deadline = st.t0 + now + a.latency_ms / 1000.0
        params = dict(self.q)
        ctype = self.headers.get("Content-Type") or ""
        if self.raw_body:
            if ctype.startswith("application/json"):
                try:
                    params.update({k: str(v) for k, v in json.loads(self.raw_body).items()})
                except (ValueError, AttributeError):
                    return self.reply(400, "invalid json", ctype="text/plain")
            else:
                params.update({k: v[0] for k, v in parse_qs(self.raw_body.decode()).items()})
        with st.lock:
            st.requests += 1
            n = st.requests
            st.methods[self.command] = st.methods.get(self.command, 0) + 1
            if params.get("key") != a.key:
                st.sent_401 += 1
                return self.reply(401, "invalid key", ctype="text/plain; charset=utf-8")
            if params.get("token") != a.token:
                st.sent_401 += 1
                return self.reply(401, "invalid token", ctype="text/plain; charset=utf-8")
            if a.rate > 0:
                win = st.windows.setdefault(params["token"], deque())
                while win and win[0] <= now - a.per:
                    win.popleft()
                if len(win) >= a.rate:
                    st.sent_429 += 1
                    wait = max(1, math.ceil(win[0] + a.per - now))
                    return self.reply(429, {"error": "API_TOKEN_LIMIT_EXCEEDED",
                                            "message": "Rate limit exceeded"},
                                      headers={"Retry-After": str(wait)})
                win.append(now)
            st.api_arrivals.append(round(now, 4))
            if a.fail_every > 0 and n % a.fail_every == 0:
                st.sent_5xx += 1
                return self.reply(500, "injected failure", ctype="text/plain")
            if self.command == "PUT":
                st.puts += 1
            return self.route(path.split("/")[1:], params)

    def route(self, parts, p):
        st = self.server.state
        cmd = self.command
        if len(parts) < 2 or parts[0] != "1":
            return self.reply(404, "Cannot %s %s" % (cmd, self.path.split("?")[0]),
                              ctype="text/plain")
        parts = parts[1:]
        filt = p.get("filter", "all")

        def by_filter(bids):
            out = []
            for bid in bids:
                b = st.boards[bid]
                if filt == "all" or (filt == "open") != b["closed"]:
                    out.append(board_view(b, p.get("fields")))
            return out

        if cmd == "GET" and len(parts) == 3 and [parts[0], parts[2]] == ["organizations", "boards"]:
            org = st.orgs.get(parts[1])
            if org is None:
                return self.reply(404, "model not found", ctype="text/plain")
            return self.reply(200, by_filter(org["boards"]))
        if cmd == "GET" and len(parts) == 3 and parts[0] == "members" and parts[2] == "boards":
            who = parts[1]
            acc = (st.account_by("username", "alice") if who == "me" else
                   st.accounts.get(who) or st.account_by("username", who))
            if acc is None:
                return self.reply(404, "model not found", ctype="text/plain")
            bids = [b for b in st.board_order
                    if any(m["idMember"] == acc["id"] for m in st.boards[b]["memberships"])]
            return self.reply(200, by_filter(bids))
        if cmd == "GET" and len(parts) == 2 and parts[0] == "search" and parts[1] == "members":
            ql = p.get("query", "").lower()
            found = [st.member_view(acc["id"]) for acc in st.accounts.values()
                     if ql and (ql in acc["email"].lower() or ql in acc["username"].lower()
                                or ql in acc["fullName"].lower())]
            return self.reply(200, found[:int(p.get("limit", "8"))])
        if parts[0] == "boards" and len(parts) >= 2:
            board = st.boards.get(parts[1])
            if board is None:
                return self.reply(400, "invalid id", ctype="text/plain")
            rest = parts[2:]
            if cmd == "GET" and not rest:
                return self.reply(200, board_view(board, p.get("fields")))
            if cmd == "GET" and rest == ["members"]:
                return self.reply(200, [st.member_view(m["idMember"])
                                        for m in board["memberships"]])
            if cmd == "GET" and rest == ["memberships"]:
                return self.reply(200, board["memberships"])
            if cmd == "PUT" and rest and rest[0] == "members":
                if board["name"] in st.a.fail_board:
                    st.sent_5xx += 1
                    return self.reply(500, "internal server error", ctype="text/plain")
                mtype = p.get("type", "normal")
                if mtype not in ("normal", "admin", "observer"):
                    return self.reply(400, "invalid value for type", ctype="text/plain")
                if len(rest) == 1:
                    email = p.get("email", "")
                    if "@" not in email:
                        return self.reply(400, "invalid value for email", ctype="text/plain")
                    acc = st.account_by("email", email)
                    if acc is None:
                        aid = make_id("a0", st.next_account)
                        st.next_account += 1
                        acc = {"id": aid, "username": email.split("@")[0] + str(st.next_account),
                               "fullName": p.get("fullName", email.split("@")[0]), "email": email,
                               "confirmed": False}
                        st.accounts[aid] = acc
                elif len(rest) == 2:
                    acc = st.accounts.get(rest[1])
                    if acc is None:
                        return self.reply(400, "invalid value for idMember", ctype="text/plain")
                else:
                    return self.reply(404, "not found", ctype="text/plain")
                st.add_membership(board["id"], acc["id"], mtype)
                return self.reply(200, {"id": board["id"],
                                        "members": [st.member_view(m["idMember"])
                                                    for m in board["memberships"]],
                                        "memberships": board["memberships"]})
            if cmd == "GET" and rest == ["cards"]:
                cards = sorted((c for c in st.cards.values() if c["idBoard"] == board["id"]),
                               key=lambda c: c["id"], reverse=True)
                if "before" in p:
                    cards = [c for c in cards if c["id"] < p["before"]]
                if "since" in p:
                    cards = [c for c in cards if c["id"] > p["since"]]
                limit = min(int(p.get("limit", "1000")), 1000)
                return self.reply(200, cards[:limit])
            return self.reply(404, "not found", ctype="text/plain")
        if cmd == "GET" and len(parts) == 3 and parts[0] == "lists" and parts[2] == "cards":
            if parts[1] not in st.lists:
                return self.reply(400, "invalid id", ctype="text/plain")
            return self.reply(200, [c for c in st.cards.values() if c["idList"] == parts[1]])
        if cmd == "POST" and parts == ["cards"]:
            lid = p.get("idList", "")
            if lid not in st.lists:
                return self.reply(400, "invalid value for idList", ctype="text/plain")
            return self.reply(200, st.new_card(lid, p.get("name", ""), p.get("desc", "")))
        return self.reply(404, "Cannot %s /%s" % (cmd, "/".join(["1"] + parts)), ctype="text/plain")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--lifetime", type=float, default=120, help="seconds before exiting")
    ap.add_argument("--org", default="support-team")
    ap.add_argument("--boards", type=int, default=10)
    ap.add_argument("--closed-every", type=int, default=0, help="every Kth board is closed")
    ap.add_argument("--cards", type=int, default=0, help="cards on the first board")
    ap.add_argument("--member-on", action="append", default=[],
                    help="EMAIL=K: that account is already on the first K open boards")
    ap.add_argument("--key", default="test-key")
    ap.add_argument("--token", default="test-token-0123456789")
    ap.add_argument("--rate", type=int, default=100, help="requests per window and token (0=off)")
    ap.add_argument("--per", type=float, default=10.0, help="window in seconds")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--fail-every", type=int, default=0, help="every Nth API request answers 500")
    ap.add_argument("--fail-board", action="append", default=[],
                    help="adding members to this board (by name) answers 500")
    a = ap.parse_args()

    timer = threading.Timer(a.lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    server = Server(("127.0.0.1", a.port), Handler)
    server.state = State(a)
    sys.stdout.write("fake_trello listening on 127.0.0.1:%d\n" % a.port)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
