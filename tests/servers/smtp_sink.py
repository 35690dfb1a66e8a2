#!/usr/bin/python3
"""An SMTP sink for autorun's mail tests and benchmark, on 127.0.0.1 only.

Normal mode (Debian's python3-aiosmtpd): every message is written to DIR as N.eml (the bytes
as received) and one line of DIR/envelopes.jsonl ({"n", "from", "rcpt", "conn"}); DIR/stats.json
holds {"connections", "messages", "quits"} and is rewritten on every change. Options reject a recipient
(550) or a sender (553), require AUTH (PLAIN/LOGIN), offer STARTTLS or speak TLS from the
first byte.

Fast mode (--fast): a minimal responder (a plain epoll loop) for the benchmark that keeps
nothing but the counts, so the sink is not what a benchmark measures.

Either way DIR/ready is written once the port accepts connections, and the sink exits by
itself after --timeout seconds.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys


class Stats:
    def __init__(self, directory):
        self.dir = directory
        self.connections = 0
        self.messages = 0
        self.quits = 0

    def write(self):
        tmp = os.path.join(self.dir, ".stats.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"connections": self.connections, "messages": self.messages,
                       "quits": self.quits}, f)
        os.replace(tmp, os.path.join(self.dir, "stats.json"))


def ready(directory, port):
    with open(os.path.join(directory, ".ready.tmp"), "w") as f:
        f.write("%d\n" % port)
    os.replace(os.path.join(directory, ".ready.tmp"), os.path.join(directory, "ready"))


# ---- Normal mode: aiosmtpd ----

def make_aiosmtpd_server(args, stats, loop):
    from aiosmtpd.smtp import SMTP, AuthResult

    reject_rcpt = {a.lower() for a in args.reject_rcpt}
    reject_from = {a.lower() for a in args.reject_from}
    stall_rcpt = {a.lower() for a in args.stall_rcpt}

    class Handler:
        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            if address.lower() in reject_from:
                return "553 5.7.1 sender rejected by policy"
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.lower() in reject_rcpt:
                return "550 5.1.1 mailbox unavailable"
            if address.lower() in stall_rcpt:
                # A server that hangs: the client waits until it gives up or is killed.
                with open(os.path.join(args.dir, "stalled"), "w") as f:
                    f.write(address + "\n")
                await asyncio.sleep(3600)
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            if args.data_delay:
                # A server that takes its time to accept a message (content scanning).
                await asyncio.sleep(args.data_delay)
            stats.messages += 1
            n = stats.messages
            with open(os.path.join(args.dir, "%d.eml" % n), "wb") as f:
                f.write(envelope.original_content)
            line = {"n": n, "from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos),
                    "conn": getattr(session, "sink_conn", 0)}
            with open(os.path.join(args.dir, "envelopes.jsonl"), "a") as f:
                f.write(json.dumps(line) + "\n")
            stats.write()
            return "250 2.0.0 OK queued as %d" % n

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = args.auth.split(":", 1)
        ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False)

    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    class CountingSMTP(SMTP):
        def connection_made(self, transport):
            super().connection_made(transport)
            stats.connections += 1
            self.session.sink_conn = stats.connections
            stats.write()

        async def smtp_QUIT(self, arg):
            stats.quits += 1
            stats.write()
            return await super().smtp_QUIT(arg)

    def factory():
        kw = {}
        if args.auth:
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(args.cert) and not args.implicit_tls)
        if args.cert and not args.implicit_tls:
            kw.update(tls_context=tls, require_starttls=True)
        return CountingSMTP(Handler(), hostname="sink.test", loop=loop, **kw)

    return loop.create_server(factory, "127.0.0.1", args.port,
                              ssl=tls if args.implicit_tls else None)


# ---- Fast mode: just enough SMTP for libcurl and smtplib ----
#
# A plain epoll loop rather than asyncio: per command it costs a recv and a send, which keeps
# the sink's share of a benchmark's CPU small.

def fast_replies(conn, data, stats):
    """Consumes data for one connection; returns the replies to send and whether to close."""
    conn["buf"] += data
    out = []
    while True:
        buf = conn["buf"]
        if conn["in_data"]:
            end = buf.find(b"\r\n.\r\n")
            if end < 0:
                break
            conn["buf"] = buf[end + 5:]
            conn["in_data"] = False
            stats.messages += 1
            out.append(b"250 2.0.0 OK\r\n")
            continue
        nl = buf.find(b"\r\n")
        if nl < 0:
            break
        verb = buf[:4].upper()
        conn["buf"] = buf[nl + 2:]
        if verb == b"EHLO":
            out.append(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 33554432\r\n")
        elif verb == b"DATA":
            conn["in_data"] = True
            # The terminator may follow at once (an empty body).
            conn["buf"] = b"\r\n" + conn["buf"]
            out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            out.append(b"221 Bye\r\n")
            return b"".join(out), True
        else:
            out.append(b"250 OK\r\n")
    return b"".join(out), False


def run_fast(args, stats):
    import selectors
    import socket
    import time

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(1024)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    ready(args.dir, args.port)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))
    deadline = time.monotonic() + args.timeout
    conns = {}

    def close(sock):
        sel.unregister(sock)
        conns.pop(sock, None)
        sock.close()
        stats.write()

    while not stop[0] and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj
            if sock is lsock:
                try:
                    c, _ = lsock.accept()
                except BlockingIOError:
                    continue
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stats.connections += 1
                conns[c] = {"buf": b"", "in_data": False}
                sel.register(c, selectors.EVENT_READ, None)
                c.sendall(b"220 sink.test ESMTP\r\n")
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                close(sock)
                continue
            reply, done = fast_replies(conns[sock], data, stats)
            if reply:
                # Replies are small; a full socket buffer here means a broken client.
                try:
                    sock.sendall(reply)
                except OSError:
                    done = True
            if done:
                close(sock)
    stats.write()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--timeout", type=float, default=120.0, help="exit after this many seconds")
    p.add_argument("--reject-rcpt", action="append", default=[], metavar="ADDR")
    p.add_argument("--reject-from", action="append", default=[], metavar="ADDR")
    p.add_argument("--stall-rcpt", action="append", default=[], metavar="ADDR",
                   help="never answer RCPT TO for this address (writes DIR/stalled)")
    p.add_argument("--data-delay", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long before accepting each message's data")
    p.add_argument("--auth", metavar="USER:PASS", help="require AUTH with these credentials")
    p.add_argument("--cert", help="PEM certificate: offer STARTTLS (required)")
    p.add_argument("--key", help="PEM key for --cert")
    p.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (smtps)")
    p.add_argument("--fast", action="store_true", help="minimal responder, counts only")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    stats = Stats(args.dir)
    stats.write()
    if args.fast:
        run_fast(args, stats)
        return 0
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(make_aiosmtpd_server(args, stats, loop))
    ready(args.dir, args.port)
    loop.call_later(args.timeout, loop.stop)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    stats.write()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
