#!/bin/bash
# mail.send over SMTP against a local sink (tests/servers/smtp_sink.py, python3-aiosmtpd):
# what arrives (parsed with Python's email module), the envelope, connection reuse, refusals,
# connection errors, AUTH and TLS.
. "$(dirname "$0")/lib.sh"

SINK="$AR_SOURCE_DIR/tests/servers/smtp_sink.py"

# Starts a sink in directory $1 with extra options; sets PORT.
start_sink() {
    local dir=$1
    shift
    PORT=$(t_free_port)
    mkdir -p "$dir"
    /usr/bin/python3 "$SINK" --port "$PORT" --dir "$dir" --timeout 120 "$@" \
        >"$dir.log" 2>&1 &
    t_track $!
    local i
    for i in $(seq 1 100); do
        [ -f "$dir/ready" ] && return 0
        sleep 0.1
    done
    echo "sink did not start: $(cat "$dir.log")"
    return 1
}

stat_of() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1/stats.json" "$2"; }

# ---- A full message: headers, UTF-8, multipart, cc, bcc, reply-to, custom headers ----
start_sink "$T_TMP/s1"
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT"
t_recipe full <<'JS'
exports.run = function (event, ctx) {
    return mail.send({
        from: 'Support Team <support@example.com>',
        to: ['Zoë Müller <zoe@example.com>', 'bob@example.com'],
        cc: 'carol@example.com',
        bcc: ['secret-audit@example.com'],
        replyTo: 'help@example.com',
        subject: 'Grüße \uD83D\uDE00 — your ticket #42',
        text: 'Hallo Zoë,\nthanks \uD83D\uDE00\n',
        html: '<p>Hallo Zo&euml;, thanks \uD83D\uDE00</p>',
        headers: { 'X-Campaign': 'nps-2026', 'List-Unsubscribe': '<https://example.com/u/1>' }
    });
};
JS
t_run run full
t_expect_rc "full message: run succeeds" 0
t_expect_contains "full message: status sent" "$OUT" '"status":"sent"'
MID=$(t_py 'print(doc["messageId"])')
CHECK=$(/usr/bin/python3 - "$T_TMP/s1" "$MID" <<'PY'
import email, email.policy, json, sys
d, mid = sys.argv[1], sys.argv[2]
env = [json.loads(l) for l in open(d + "/envelopes.jsonl")]
assert len(env) == 1, env
e = env[0]
assert e["from"] == "support@example.com", e
assert sorted(e["rcpt"]) == sorted(["zoe@example.com", "bob@example.com", "carol@example.com",
                                    "secret-audit@example.com"]), e
raw = open(d + "/1.eml", "rb").read()
assert b"secret-audit" not in raw, "bcc leaked into the message"
m = email.message_from_bytes(raw, policy=email.policy.default)
assert m["Subject"] == "Grüße \U0001F600 — your ticket #42", repr(m["Subject"])
assert m["From"].addresses[0].addr_spec == "support@example.com"
assert m["From"].addresses[0].display_name == "Support Team"
tos = [(a.display_name, a.addr_spec) for a in m["To"].addresses]
assert tos == [("Zoë Müller", "zoe@example.com"), ("", "bob@example.com")], tos
assert m["Cc"].addresses[0].addr_spec == "carol@example.com"
assert m["Reply-To"].addresses[0].addr_spec == "help@example.com"
assert m["Bcc"] is None
assert m["Message-ID"] == mid, (m["Message-ID"], mid)
assert m["X-Campaign"] == "nps-2026"
assert m["List-Unsubscribe"] == "<https://example.com/u/1>"
assert m["Date"] is not None
assert m.get_content_type() == "multipart/alternative"
parts = list(m.iter_parts())
assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
assert parts[0].get_content().replace("\r\n", "\n") == "Hallo Zoë,\nthanks \U0001F600\n", repr(parts[0].get_content())
assert "Zo&euml;, thanks \U0001F600" in parts[1].get_content()
print("ok")
PY
)
t_expect_eq "full message: headers, UTF-8 subject, parts, bcc only in the envelope" "$CHECK" "ok"
STEP=$(t_sql "SELECT kind, status FROM steps WHERE run_id=1")
t_expect_eq "full message: one mail step, sent" "$STEP" "mail|sent"
DETAIL=$(t_sql "SELECT detail FROM steps WHERE run_id=1")
t_expect_contains "step detail names the transport" "$DETAIL" "\"transport\":\"smtp://127.0.0.1:$PORT\""
t_expect_contains "step detail lists bcc recipients" "$DETAIL" "secret-audit@example.com"
t_expect_contains "step detail has the server's reply" "$DETAIL" '"reply":"250 2.0.0 OK queued as 1"'

# ---- Connection reuse: a batch through parallel() shares a few connections ----
start_sink "$T_TMP/s2"
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT"
t_recipe batch <<'JS'
exports.run = function (event, ctx) {
    var people = [];
    for (var i = 0; i < 40; i++) { people.push({ id: i, email: 'user' + i + '@example.com' }); }
    var r = parallel(people, function (p) {
        return mail.send({ to: p.email, subject: 'Hello ' + p.id, text: 'Body ' + p.id }).status;
    }, { concurrency: 4 });
    return { sent: r.filter(function (s) { return s === 'sent'; }).length };
};
JS
t_run run batch
t_expect_rc "batch: run succeeds" 0
t_expect_contains "batch: 40 sent" "$OUT" '"sent":40'
t_expect_eq "batch: the sink got 40 messages" "$(stat_of "$T_TMP/s2" messages)" "40"
CONNS=$(stat_of "$T_TMP/s2" connections)
if [ "$CONNS" -ge 1 ] && [ "$CONNS" -le 4 ]; then
    t_pass "batch: connections reused ($CONNS connections for 40 messages)"
else
    t_fail "batch: connections reused" "connections: $CONNS for 40 messages"
fi
# The process ends its sessions politely before it exits (no dropped connections on the server).
t_expect_eq "batch: every session ended with QUIT" "$(stat_of "$T_TMP/s2" quits)" "$CONNS"
t_expect_eq "batch: 40 mail steps" "$(t_sql "SELECT count(*) FROM steps WHERE run_id=2 AND kind='mail' AND status='sent'")" "40"

# ---- A refused recipient: MailError with the server's reply, the process goes on ----
start_sink "$T_TMP/s3" --reject-rcpt nobody@example.com --reject-from blocked@example.com
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT"
t_recipe refused <<'JS'
exports.run = function (event, ctx) {
    var out = {};
    try {
        mail.send({ to: 'nobody@example.com', subject: 'x', text: 'x' });
        out.first = 'sent?';
    } catch (e) {
        out.first = e.name + ': ' + e.message;
        out.code = e.smtpCode;
    }
    try {
        mail.send({ from: 'blocked@example.com', to: 'a@example.com', subject: 'x', text: 'x' });
    } catch (e) {
        out.sender = e.message;
    }
    out.after = mail.send({ to: 'ok@example.com', subject: 'after', text: 'x' }).status;
    return out;
};
JS
t_run run refused
t_expect_rc "550: the recipe caught it and finished" 0
t_expect_contains "550: MailError with the reply text" "$OUT" 'MailError: smtp://127.0.0.1:'"$PORT"': RCPT failed: 550 (server said: 550 5.1.1 mailbox unavailable)'
t_expect_contains "550: smtpCode is 550" "$OUT" '"code":550'
t_expect_contains "553 sender refusal explained" "$OUT" '553 5.7.1 sender rejected by policy'
t_expect_contains "a later message on the same server is sent" "$OUT" '"after":"sent"'
RID=$(t_sql "SELECT max(id) FROM runs")
ERRS=$(t_sql "SELECT status || ' ' || error FROM steps WHERE run_id=$RID ORDER BY seq")
t_expect_contains "550 recorded in the step's error" "$ERRS" "error MailError: smtp://127.0.0.1:$PORT: RCPT failed: 550 (server said: 550 5.1.1 mailbox unavailable)"
t_expect_eq "only the good message arrived" "$(stat_of "$T_TMP/s3" messages)" "1"

t_recipe refused_uncaught <<'JS'
exports.run = function (event, ctx) {
    mail.send({ to: 'nobody@example.com', subject: 'x', text: 'x' });
    return 'unreachable';
};
JS
t_run run refused_uncaught
t_expect_rc "uncaught 550 fails the run (exit 1)" 1
t_expect_contains "uncaught 550: clear error on stderr" "$ERR" "MailError: smtp://127.0.0.1:$PORT: RCPT failed: 550"
RID=$(t_sql "SELECT max(id) FROM runs")
t_expect_contains "uncaught 550: the run's error in history" "$(t_sql "SELECT status, error FROM runs WHERE id=$RID")" "failed|"
t_expect_contains "uncaught 550: history names the reply" "$(t_sql "SELECT error FROM runs WHERE id=$RID")" "550 5.1.1 mailbox unavailable"

# ---- Connection refused ----
DEAD=$(t_free_port)
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$DEAD"
t_recipe refusedconn <<'JS'
exports.run = function (event, ctx) {
    try { mail.send({ to: 'a@example.com', subject: 'x', text: 'x' }); }
    catch (e) { return e.name + ': ' + e.message; }
};
JS
t_run run refusedconn
t_expect_rc "connection refused: run finishes" 0
t_expect_contains "connection refused: MailError names the server" "$OUT" "MailError: smtp://127.0.0.1:$DEAD: "
t_expect_contains "connection refused: says why" "$OUT" "onnect"

# ---- AUTH from the secrets SMTP_USER / SMTP_PASS, redacted in history ----
start_sink "$T_TMP/s4" --auth "mailer:s3cr3t-pass"
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT"
t_recipe auth <<'JS'
exports.run = function (event, ctx) {
    return mail.send({ to: 'a@example.com', subject: 'auth', text: 'x' }).status;
};
JS
SMTP_USER=mailer SMTP_PASS=s3cr3t-pass t_run run auth
t_expect_rc "AUTH via secrets: run succeeds" 0
t_expect_eq "AUTH via secrets: sent" "$OUT" '"sent"'
t_expect_eq "AUTH via secrets: delivered" "$(stat_of "$T_TMP/s4" messages)" "1"
SMTP_USER=mailer SMTP_PASS=wrong-pass t_run run auth
t_expect_rc "AUTH with a wrong password fails the run" 1
t_expect_contains "AUTH failure explained" "$ERR" "MailError: smtp://127.0.0.1:$PORT: "
t_expect_contains "AUTH failure has the server's 535" "$ERR" "535"
export AUTORUN_MAIL_URL="smtp://mailer:s3cr3t-pass@127.0.0.1:$PORT"
t_run run auth
t_expect_eq "AUTH via the URL: sent" "$OUT" '"sent"'
t_expect_eq "AUTH via the URL: delivered" "$(stat_of "$T_TMP/s4" messages)" "2"
t_expect_eq "the password is nowhere in history" \
    "$(t_sql "SELECT count(*) FROM steps WHERE detail LIKE '%s3cr3t%' OR name LIKE '%s3cr3t%' OR error LIKE '%s3cr3t%'")" "0"

# ---- TLS: STARTTLS required, and smtps (TLS from the first byte) ----
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_TMP/key.pem" -out "$T_TMP/cert.pem" \
    -days 1 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    >/dev/null 2>&1; then
    t_recipe tls <<'JS'
exports.run = function (event, ctx) {
    return mail.send({ to: 'a@example.com', subject: 'tls', text: 'x' }).status;
};
JS
    start_sink "$T_TMP/s5" --cert "$T_TMP/cert.pem" --key "$T_TMP/key.pem"
    export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT?starttls=required&cacert=$T_TMP/cert.pem"
    t_run run tls
    t_expect_eq "STARTTLS required: sent" "$OUT" '"sent"'
    t_expect_eq "STARTTLS required: delivered" "$(stat_of "$T_TMP/s5" messages)" "1"
    export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT?starttls=required"
    t_run run tls
    t_expect_rc "STARTTLS with an untrusted certificate fails" 1
    t_expect_eq "STARTTLS untrusted: nothing more delivered" "$(stat_of "$T_TMP/s5" messages)" "1"
    start_sink "$T_TMP/s6" --cert "$T_TMP/cert.pem" --key "$T_TMP/key.pem" --implicit-tls
    export AUTORUN_MAIL_URL="smtps://127.0.0.1:$PORT?cacert=$T_TMP/cert.pem"
    t_run run tls
    t_expect_eq "smtps: sent" "$OUT" '"sent"'
    t_expect_eq "smtps: delivered" "$(stat_of "$T_TMP/s6" messages)" "1"
else
    t_fail "openssl could not make a test certificate"
fi

# ---- A slow server does not stall the engine ----
# libcurl waits for the reply to the end of the data synchronously; autorun runs SMTP on a
# thread of its own, so another fiber keeps running while the server takes 2 s to accept.
start_sink "$T_TMP/s7" --data-delay 2
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT"
t_recipe slow <<'JS'
exports.run = function (event, ctx) {
    var ticks = 0, ticksWhenSent = -1;
    parallel([0, 1], function (i) {
        if (i === 0) {
            mail.send({ to: 'a@example.com', subject: 'slow', text: 'x' });
            ticksWhenSent = ticks;
        } else {
            for (var k = 0; k < 10; k++) { sleep(20); ticks++; }
        }
    });
    return { ticksWhenSent: ticksWhenSent };
};
JS
t_run run slow
t_expect_rc "slow server: run succeeds" 0
t_expect_eq "slow server: the other fiber ran all its ticks while the server waited" "$OUT" '{"ticksWhenSent":10}'

# ---- A bad mail.url is a clear MailError ----
export AUTORUN_MAIL_URL="smtp://127.0.0.1:25?bogus=1"
t_run run auth
t_expect_rc "bad mail.url fails the run" 1
t_expect_contains "bad mail.url explained" "$ERR" "MailError: mail.url: unknown option 'bogus'"

t_done
