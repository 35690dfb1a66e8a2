#!/bin/bash
# mail.send with the file outbox (the default transport), idempotency keys, a crash in the
# middle of a batch, refused input (header injection, bad addresses) and dry runs.
. "$(dirname "$0")/lib.sh"

SINK="$AR_SOURCE_DIR/tests/servers/smtp_sink.py"
OUTBOX="$AUTORUN_HOME/outbox"
unset AUTORUN_MAIL_URL

eml_count() { find "$OUTBOX" -name '*.eml' 2>/dev/null | wc -l | tr -d ' '; }

# ---- The default transport: one .eml per message in $AUTORUN_HOME/outbox ----
t_recipe one <<'JS'
exports.run = function (event, ctx) {
    return mail.send({ to: event.to || 'ann@example.com', subject: event.subject || 'Hello',
                       text: 'Hi Ann', idempotencyKey: event.key });
};
JS
t_run run one
t_expect_rc "file outbox: run succeeds" 0
t_expect_contains "file outbox: sent" "$OUT" '"status":"sent"'
t_expect_eq "file outbox: one .eml" "$(eml_count)" "1"
EML=$(find "$OUTBOX" -name '*.eml' | head -1)
t_expect_eq "file outbox: .eml is mode 0600" "$(stat -c %a "$EML")" "600"
t_expect_eq "file outbox: directory is mode 0700" "$(stat -c %a "$OUTBOX")" "700"
t_expect_eq "file outbox: no temporary files left" "$(find "$OUTBOX" -name '.*' -type f | wc -l | tr -d ' ')" "0"
MID=$(t_py 'print(doc["messageId"])')
CHECK=$(/usr/bin/python3 - "$EML" "$MID" <<'PY'
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
assert m["To"].addresses[0].addr_spec == "ann@example.com"
assert m["From"].addresses[0].addr_spec == "autorun@localhost", m["From"]
assert m["Subject"] == "Hello"
assert m["Message-ID"] == sys.argv[2]
assert m.get_content().strip() == "Hi Ann"
print("ok")
PY
)
t_expect_eq "file outbox: the .eml parses (default sender, Message-ID)" "$CHECK" "ok"
t_expect_contains "file outbox: step detail names the file" "$(t_sql "SELECT detail FROM steps WHERE run_id=1")" "\"file\":\"$EML\""

# mail.from sets the default sender.
AUTORUN_MAIL_FROM='Help Desk <help@example.org>' t_run run one
NEWEST=$(ls -t "$OUTBOX"/*.eml | head -1)
t_expect_contains "mail.from is the default sender" "$(grep -i '^From:' "$NEWEST")" "Help Desk <help@example.org>"

# ---- Idempotency: the same key twice sends once ----
rm -rf "$OUTBOX"
t_run run one --input '{"key":"welcome:7"}'
t_expect_contains "key, first run: sent" "$OUT" '"status":"sent"'
FIRST_MID=$(t_py 'print(doc["messageId"])')
t_run run one --input '{"key":"welcome:7"}'
t_expect_rc "key, second run: succeeds" 0
t_expect_contains "key, second run: duplicate" "$OUT" '"status":"duplicate"'
t_expect_eq "key, second run: the first Message-ID" "$(t_py 'print(doc["messageId"])')" "$FIRST_MID"
t_expect_eq "key: one message in the outbox" "$(eml_count)" "1"
t_expect_eq "key: outbox row is sent" "$(t_sql "SELECT state, attempts, recipients FROM outbox WHERE key='welcome:7'")" 'sent|1|["ann@example.com"]'
RID=$(t_sql "SELECT max(id) FROM runs")
t_expect_eq "key: the duplicate is a step" "$(t_sql "SELECT kind, status FROM steps WHERE run_id=$RID")" "mail|duplicate"

# Without a key every call sends.
t_run run one
t_run run one
t_expect_eq "no key: always sends" "$(eml_count)" "3"

# Same key twice inside one run, concurrently: one message, one duplicate.
t_recipe twice <<'JS'
exports.run = function (event, ctx) {
    return parallel(['a', 'b', 'c'], function (x) {
        return mail.send({ to: 'dup@example.com', subject: 'once', text: x,
                           idempotencyKey: 'same-key' }).status;
    }, { concurrency: 3 }).sort();
};
JS
rm -rf "$OUTBOX"
t_run run twice
t_expect_eq "same key in parallel: one sent, the others duplicates" "$OUT" '["duplicate","duplicate","sent"]'
t_expect_eq "same key in parallel: one message" "$(eml_count)" "1"

# ---- Crash simulation: a key left 'sending' is sent again, once ----
rm -rf "$OUTBOX"
t_sql "INSERT INTO outbox (key, recipe, run_id, message_id, recipients, subject, state, created_at, updated_at) VALUES ('crash:1', 'one', 0, '<old@localhost>', '[\"ann@example.com\"]', 'Hello', 'sending', 1, 1)"
t_run run one --input '{"key":"crash:1"}'
t_expect_contains "left 'sending': sent again" "$OUT" '"status":"sent"'
t_expect_eq "left 'sending': now sent, second attempt" "$(t_sql "SELECT state, attempts FROM outbox WHERE key='crash:1'")" "sent|2"
t_run run one --input '{"key":"crash:1"}'
t_expect_contains "left 'sending': the next run is a duplicate" "$OUT" '"status":"duplicate"'
t_expect_eq "left 'sending': one message" "$(eml_count)" "1"

# A real crash: the process is killed while the server holds message 3 of 5. The next run
# re-sends only message 3 (the one in flight) and the two never tried.
PORT=$(t_free_port)
mkdir -p "$T_TMP/sink1"
/usr/bin/python3 "$SINK" --port "$PORT" --dir "$T_TMP/sink1" --timeout 60 \
    --stall-rcpt p3@example.com >"$T_TMP/sink1.log" 2>&1 &
t_track $!
for i in $(seq 1 100); do [ -f "$T_TMP/sink1/ready" ] && break; sleep 0.1; done
t_recipe batch5 <<'JS'
exports.run = function (event, ctx) {
    var out = [];
    for (var i = 1; i <= 5; i++) {
        out.push(mail.send({ to: 'p' + i + '@example.com', subject: 'Survey ' + i, text: 'x',
                             idempotencyKey: 'batch5:' + i }).status);
    }
    return out;
};
JS
AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT" "$AUTORUN" run batch5 >"$T_TMP/crash.out" 2>&1 &
APID=$!
t_track $APID
for i in $(seq 1 200); do [ -f "$T_TMP/sink1/stalled" ] && break; sleep 0.05; done
# The sink stalls on RCPT of message 3; by then 'sending' for it is committed.
sleep 0.2
kill -9 $APID
wait $APID 2>/dev/null
t_expect_eq "crash: two messages arrived before the kill" "$(wc -l < "$T_TMP/sink1/envelopes.jsonl" | tr -d ' ')" "2"
t_expect_eq "crash: outbox after the kill" \
    "$(t_sql "SELECT group_concat(key || '=' || state, ' ') FROM (SELECT * FROM outbox WHERE key LIKE 'batch5:%' ORDER BY key)")" \
    "batch5:1=sent batch5:2=sent batch5:3=sending"
PORT2=$(t_free_port)
mkdir -p "$T_TMP/sink2"
/usr/bin/python3 "$SINK" --port "$PORT2" --dir "$T_TMP/sink2" --timeout 60 >"$T_TMP/sink2.log" 2>&1 &
t_track $!
for i in $(seq 1 100); do [ -f "$T_TMP/sink2/ready" ] && break; sleep 0.1; done
AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT2" t_run run batch5
t_expect_eq "crash: rerun result" "$OUT" '["duplicate","duplicate","sent","sent","sent"]'
t_expect_eq "crash: rerun re-sent only 3, 4, 5" \
    "$(/usr/bin/python3 -c 'import json,sys; print(" ".join(json.loads(l)["rcpt"][0] for l in open(sys.argv[1])))' "$T_TMP/sink2/envelopes.jsonl")" \
    "p3@example.com p4@example.com p5@example.com"
t_expect_eq "crash: all five sent now" "$(t_sql "SELECT count(*) FROM outbox WHERE key LIKE 'batch5:%' AND state='sent'")" "5"

# ---- Refused input: nothing is sent ----
rm -rf "$OUTBOX"
t_recipe bad <<'JS'
exports.run = function (event, ctx) {
    var cases = {
        subjectCRLF: { to: 'a@example.com', subject: 'Hi\r\nBcc: victim@example.com', text: 'x' },
        subjectLF: { to: 'a@example.com', subject: 'Hi\nX-Evil: 1', text: 'x' },
        headerCRLF: { to: 'a@example.com', subject: 'ok', text: 'x',
                      headers: { 'X-Note': 'a\r\nBcc: victim@example.com' } },
        headerName: { to: 'a@example.com', subject: 'ok', text: 'x', headers: { 'X Bad': 'v' } },
        toCRLF: { to: 'a@example.com\r\nBcc: victim@example.com', subject: 'ok', text: 'x' },
        fromCRLF: { from: 'a@example.com\r\nBcc: victim@example.com', to: 'b@example.com',
                    subject: 'ok', text: 'x' },
        badAddress: { to: 'not-an-address', subject: 'ok', text: 'x' },
        badCc: { to: 'a@example.com', cc: ['ok@example.com', 'x@'], subject: 'ok', text: 'x' },
        noRecipient: { subject: 'ok', text: 'x' },
        structural: { to: 'a@example.com', subject: 'ok', text: 'x', headers: { Bcc: 'x@example.com' } },
        nul: { to: 'a@example.com', subject: 'a\u0000b', text: 'x' },
        unknownField: { to: 'a@example.com', subjct: 'typo', text: 'x' },
        badKey: { to: 'a@example.com', text: 'x', idempotencyKey: {} }
    };
    var out = {};
    Object.keys(cases).forEach(function (k) {
        try { mail.send(cases[k]); out[k] = 'SENT'; }
        catch (e) { out[k] = e.name + ': ' + e.message; }
    });
    return out;
};
JS
t_run run bad
t_expect_rc "refused input: run finishes" 0
t_expect_eq "refused input: nothing sent" "$(eml_count)" "0"
t_expect_not_contains "refused input: no case was sent" "$OUT" "SENT"
chk() { t_expect_eq "refused input: $1" "$(t_py "print(doc['$1'])")" "$2"; }
chk subjectCRLF "MailError: subject contains a line break"
chk subjectLF "MailError: subject contains a line break"
chk headerCRLF "MailError: headers.X-Note contains a line break"
chk toCRLF "MailError: to contains a line break"
chk fromCRLF "MailError: from contains a line break"
t_expect_contains "refused input: badAddress" "$(t_py "print(doc['badAddress'])")" "MailError: to: "
t_expect_contains "refused input: badAddress names it" "$(t_py "print(doc['badAddress'])")" "'not-an-address'"
t_expect_contains "refused input: badCc" "$(t_py "print(doc['badCc'])")" "MailError: cc: "
t_expect_contains "refused input: badCc names it" "$(t_py "print(doc['badCc'])")" "'x@'"
chk noRecipient "MailError: no recipients: set to, cc or bcc"
chk structural "MailError: headers: Bcc is set by mail.send itself"
chk nul "MailError: subject contains a NUL character"
t_expect_contains "refused input: unknown field is a TypeError" "$(t_py "print(doc['unknownField'])")" "TypeError: mail.send: unknown field 'subjct'"
t_expect_contains "refused input: bad key is a TypeError" "$(t_py "print(doc['badKey'])")" "TypeError: mail.send: idempotencyKey"
t_expect_contains "refused input: header name explained" "$(t_py "print(doc['headerName'])")" "MailError: headers: 'X Bad' is not a header name"
RID=$(t_sql "SELECT max(id) FROM runs")
t_expect_eq "refused input: each MailError is an error step" \
    "$(t_sql "SELECT count(*) FROM steps WHERE run_id=$RID AND kind='mail' AND status='error'")" "11"
t_expect_contains "refused input: the step says why" \
    "$(t_sql "SELECT error FROM steps WHERE run_id=$RID ORDER BY seq LIMIT 1")" "MailError: subject contains a line break"

# ---- Dry run: nothing sent, steps say what would have been ----
rm -rf "$OUTBOX"
t_recipe dry <<'JS'
exports.run = function (event, ctx) {
    var a = mail.send({ to: 'x@example.com', bcc: 'y@example.com', subject: 'Would send',
                        text: 'x', idempotencyKey: 'dry:1' });
    var b = mail.send({ to: 'z@example.com', subject: 'Also', text: 'x' });
    return [a.status, b.status, ctx.dryRun];
};
JS
t_run run dry --dry-run
t_expect_rc "dry run: succeeds" 0
t_expect_eq "dry run: result" "$OUT" '["dry-run","dry-run",true]'
t_expect_eq "dry run: nothing in the outbox directory" "$(eml_count)" "0"
t_expect_eq "dry run: no outbox row" "$(t_sql "SELECT count(*) FROM outbox WHERE key='dry:1'")" "0"
RID=$(t_sql "SELECT max(id) FROM runs")
t_expect_eq "dry run: two dry-run steps" "$(t_sql "SELECT group_concat(kind || ':' || status, ' ') FROM steps WHERE run_id=$RID")" "mail:dry-run mail:dry-run"
D1=$(t_sql "SELECT name || ' ' || detail FROM steps WHERE run_id=$RID AND seq=1")
t_expect_contains "dry run: step names the recipients" "$D1" '"recipients":["x@example.com","y@example.com"]'
t_expect_contains "dry run: step names the subject" "$D1" '"subject":"Would send"'
t_run run dry
t_expect_eq "after the dry run the key is still free" "$OUT" '["sent","sent",false]'

t_done
