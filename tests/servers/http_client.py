#!/usr/bin/python3
"""Raw-socket HTTP clients for the `autorun serve` tests, on 127.0.0.1 only.

Subcommands (each ends by itself within --limit seconds):
  slow PORT OUT        sends half of a request's headers and stalls; writes to OUT "closed"
                       when the server closed the connection (with the bytes it sent first, if
                       any), or "open" when it was still open after --limit seconds.
  pipeline PORT PATH N sends N POSTs to PATH and a GET /healthz in one write on one
                       connection, reads every answer, then sends one more request on the same
                       connection; prints a JSON list of [status, body, connection-header].
  stream PORT PATH     sends the deliveries FIRST..LAST (--first, --last) one after another
                       on a keep-alive connection, each with the header X-Delivery: ID and the
                       body {"id": ID}; appends "ID STATUS" to --acked for every answer and
                       "ID fail" when none came (the connection broke, the server was gone).
  sign SECRET          prints the GitHub signature (sha256=HEX) of stdin's bytes.
"""
import argparse
import hashlib
import hmac
import json
import socket
import sys
import time


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Reads HTTP/1.1 answers (Content-Length bodies) from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def answer(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_request else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self.fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body.decode("utf-8", "replace"), headers


def request_bytes(method, path, body=b"", headers=None):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body or method in ("POST", "PUT"):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def cmd_slow(a):
    s = connect(a.port, a.limit)
    s.sendall(b"POST /hooks/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    got = b""
    state = "open"
    deadline = time.monotonic() + a.limit
    try:
        while time.monotonic() < deadline:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            data = s.recv(4096)
            if not data:
                state = "closed"
                break
            got += data
    except socket.timeout:
        pass
    except ConnectionResetError:
        state = "closed"
    s.close()
    with open(a.out, "w") as f:
        f.write(state + "\n" + got.decode("latin-1"))


def cmd_pipeline(a):
    s = connect(a.port, a.limit)
    payload = b""
    for i in range(a.n):
        body = json.dumps({"n": i}).encode()
        payload += request_bytes("POST", a.path, body,
                                 {"Content-Type": "application/json", "X-Delivery": "pipe-%d" % i})
    payload += request_bytes("GET", "/healthz")
    s.sendall(payload)
    r = Reader(s)
    out = []
    for _ in range(a.n + 1):
        st, body, h = r.answer()
        out.append([st, body, h.get("connection", "")])
    # The connection is still usable after the pipelined burst.
    s.sendall(request_bytes("GET", "/healthz"))
    st, body, h = r.answer()
    out.append([st, body, h.get("connection", "")])
    s.close()
    print(json.dumps(out))


def cmd_stream(a):
    sock = None
    reader = None
    with open(a.acked, "a") as log:
        for i in range(a.first, a.last + 1):
            ident = "%s%d" % (a.prefix, i)
            body = json.dumps({"id": ident}).encode()
            req = request_bytes("POST", a.path, body,
                                {"Content-Type": "application/json", "X-Delivery": ident})
            status = "fail"
            try:
                if sock is None:
                    sock = connect(a.port, a.limit)
                    reader = Reader(sock)
                sock.sendall(req)
                st, _, h = reader.answer()
                status = str(st)
                if h.get("connection", "").lower() == "close":
                    sock.close()
                    sock = None
            except (OSError, EOFError, ValueError, IndexError):
                if sock is not None:
                    sock.close()
                sock = None
            log.write("%s %s\n" % (ident, status))
            log.flush()
    if sock is not None:
        sock.close()


def cmd_sign(a):
    digest = hmac.new(a.secret.encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest()
    print("sha256=" + digest)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slow")
    s.add_argument("port", type=int)
    s.add_argument("out")
    s.add_argument("--limit", type=float, default=30)
    s = sub.add_parser("pipeline")
    s.add_argument("port", type=int)
    s.add_argument("path")
    s.add_argument("n", type=int)
    s.add_argument("--limit", type=float, default=20)
    s = sub.add_parser("stream")
    s.add_argument("port", type=int)
    s.add_argument("path")
    s.add_argument("--first", type=int, default=1)
    s.add_argument("--last", type=int, required=True)
    s.add_argument("--prefix", default="d")
    s.add_argument("--acked", required=True)
    s.add_argument("--limit", type=float, default=5)
    s = sub.add_parser("sign")
    s.add_argument("secret")
    a = p.parse_args()
    {"slow": cmd_slow, "pipeline": cmd_pipeline, "stream": cmd_stream, "sign": cmd_sign}[a.cmd](a)


if __name__ == "__main__":
    main()
