#!/bin/bash
# The shipped recipes nps-survey and research-email, end to end: on the embedded defaults
# (the sample customer database built from recipes/data/customers.sql, the file outbox) and
# against a local SMTP sink.
. "$(dirname "$0")/lib.sh"

SINK="$AR_SOURCE_DIR/tests/servers/smtp_sink.py"
export AUTORUN_RECIPES="$AR_SOURCE_DIR/recipes"
unset AUTORUN_MAIL_URL AUTORUN_SURVEY_URL AUTORUN_DB_CUSTOMERS
OUTBOX="$AUTORUN_HOME/outbox"
SQL_SUM=$(sha256sum "$AR_SOURCE_DIR/recipes/data/customers.sql")
RECIPES_LIST=$(ls -a "$AR_SOURCE_DIR/recipes" "$AR_SOURCE_DIR/recipes/data")

eml_count() { find "$OUTBOX" -name '*.eml' 2>/dev/null | wc -l | tr -d ' '; }
cust() { sqlite3 "$AUTORUN_HOME/customers.db" "$1"; }

# ---- Dry run: who would get it, nothing sent or marked ----
t_run run nps-survey --dry-run
t_expect_rc "nps dry run: succeeds" 0
t_expect_eq "nps dry run: six would be sent, none sent" \
    "$(t_py 'print(doc["sent"], doc["skipped"], doc["wouldSend"])')" "0 0 6"
t_expect_eq "nps dry run: the six customers solved a week ago and never surveyed" \
    "$(t_py 'print(",".join(doc["recipients"]))')" \
    "zoe.mueller@example.com,francois.lefevre@example.com,ayse.yilmaz@example.com,bjorn.angstrom@example.com,ngozi.eze@example.com,thabo.nkosi@example.com"
t_expect_eq "nps dry run: nothing in the outbox" "$(eml_count)" "0"
t_expect_eq "nps dry run: nobody marked" "$(cust "SELECT count(*) FROM customers WHERE nps_sent_at > strftime('%Y-%m-%dT%H:%M:%fZ','now','-1 hour')")" "0"
t_expect_eq "nps dry run: six dry-run mail steps" \
    "$(t_sql "SELECT count(*) FROM steps WHERE run_id=1 AND kind='mail' AND status='dry-run'")" "6"

# ---- Out of the box: sample database, file outbox ----
t_run run nps-survey
t_expect_rc "nps: succeeds" 0
t_expect_eq "nps: sent six, skipped none" "$OUT" '{"sent":6,"skipped":0}'
t_expect_eq "nps: six .eml files" "$(eml_count)" "6"
t_expect_eq "nps: the six are marked" \
    "$(cust "SELECT group_concat(id) FROM (SELECT id FROM customers WHERE nps_sent_at > strftime('%Y-%m-%dT%H:%M:%fZ','now','-1 hour') ORDER BY id)")" \
    "3,8,14,21,30,42"
t_expect_eq "nps: six keys sent in the outbox table" \
    "$(t_sql "SELECT count(*) FROM outbox WHERE key LIKE 'nps:%' AND state='sent' AND recipe='nps-survey'")" "6"
CHECK=$(/usr/bin/python3 - "$OUTBOX" <<'PY'
import email, email.policy, glob, re, sys
msgs = [email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
        for f in sorted(glob.glob(sys.argv[1] + "/*.eml"))]
by_addr = {m["To"].addresses[0].addr_spec: m for m in msgs}
assert len(by_addr) == 6, sorted(by_addr)
m = by_addr["zoe.mueller@example.com"]
assert m["To"].addresses[0].display_name == "Zoë Müller", m["To"]
assert m["Subject"] == "How did we do? One quick question"
assert m["X-Autorun-Survey"] == "nps"
text, html = [p.get_content() for p in m.iter_parts()]
assert "Hello Zoë Müller," in text
for s in range(11):
    url = "https://survey.example.com/nps?customer=3&score=%d" % s
    assert url in text, (url, text)
    assert 'href="https://survey.example.com/nps?customer=3&amp;score=%d"' % s in html, html
assert "Hello Zoë Müller," in html
m = by_addr["francois.lefevre@example.com"]
assert "customer=8&score=10" in list(m.iter_parts())[0].get_content()
print("ok")
PY
)
t_expect_eq "nps: each message has the customer's name and 11 score links (text and html)" "$CHECK" "ok"

t_run run nps-survey
t_expect_eq "nps: a second run sends nothing new" "$OUT" '{"sent":0,"skipped":0}'
t_expect_eq "nps: still six messages" "$(eml_count)" "6"

# A crash after sending but before marking: the marks are gone, the keys are not.
cust "UPDATE customers SET nps_sent_at = NULL WHERE id IN (3, 8)"
t_run run nps-survey
t_expect_eq "nps: unmarked but already sent are duplicates, not re-sent" "$OUT" '{"sent":0,"skipped":2}'
t_expect_eq "nps: still six messages after the crash" "$(eml_count)" "6"
t_expect_eq "nps: marked again" "$(cust "SELECT count(*) FROM customers WHERE id IN (3, 8) AND nps_sent_at IS NOT NULL")" "2"

t_expect_eq "the repository's customers.sql is unchanged" "$(sha256sum "$AR_SOURCE_DIR/recipes/data/customers.sql")" "$SQL_SUM"
t_expect_eq "nothing was written beside the recipes" "$(ls -a "$AR_SOURCE_DIR/recipes" "$AR_SOURCE_DIR/recipes/data")" "$RECIPES_LIST"

# ---- Against an SMTP server, with the survey.url setting ----
export AUTORUN_HOME="$T_TMP/home2"
PORT=$(t_free_port)
mkdir -p "$T_TMP/sink"
/usr/bin/python3 "$SINK" --port "$PORT" --dir "$T_TMP/sink" --timeout 120 >"$T_TMP/sink.log" 2>&1 &
t_track $!
for i in $(seq 1 100); do [ -f "$T_TMP/sink/ready" ] && break; sleep 0.1; done
export AUTORUN_MAIL_URL="smtp://127.0.0.1:$PORT" AUTORUN_SURVEY_URL="https://nps.example.org/s?src=mail"
export AUTORUN_MAIL_FROM='Example Support <support@example.org>'
t_run run nps-survey
t_expect_rc "nps over SMTP: succeeds" 0
t_expect_eq "nps over SMTP: six sent" "$OUT" '{"sent":6,"skipped":0}'
CHECK=$(/usr/bin/python3 - "$T_TMP/sink" <<'PY'
import email, email.policy, json, sys
d = sys.argv[1]
env = [json.loads(l) for l in open(d + "/envelopes.jsonl")]
rcpt = sorted(r for e in env for r in e["rcpt"])
assert rcpt == sorted(["zoe.mueller@example.com", "francois.lefevre@example.com",
                       "ayse.yilmaz@example.com", "bjorn.angstrom@example.com",
                       "ngozi.eze@example.com", "thabo.nkosi@example.com"]), rcpt
assert all(e["from"] == "support@example.org" for e in env), env
for e in env:
    m = email.message_from_bytes(open("%s/%d.eml" % (d, e["n"]), "rb").read(),
                                 policy=email.policy.default)
    assert m["From"].addresses[0].display_name == "Example Support"
    text = list(m.iter_parts())[0].get_content()
    assert "https://nps.example.org/s?src=mail&customer=" in text, text
print("ok")
PY
)
t_expect_eq "nps over SMTP: envelopes, sender and survey.url links" "$CHECK" "ok"
t_run run nps-survey
t_expect_eq "nps over SMTP: second run sends nothing" "$OUT" '{"sent":0,"skipped":0}'
t_expect_eq "nps over SMTP: the sink still has six" "$(wc -l < "$T_TMP/sink/envelopes.jsonl" | tr -d ' ')" "6"

# ---- research-email ----
t_run run research-email --input '{"segment":"plan = ?","params":["pro"],"question":"What almost stopped you from upgrading?"}'
t_expect_rc "research: succeeds" 0
PRO=$(cust "SELECT count(*) FROM customers WHERE plan='pro'")
t_expect_eq "research: every pro customer got it" "$(t_py 'print(doc["segment"], doc["recipients"], doc["sent"], doc["skipped"])')" "plan $PRO $PRO 0"
t_expect_eq "research: the sink got them" "$(wc -l < "$T_TMP/sink/envelopes.jsonl" | tr -d ' ')" "$((6 + PRO))"
CHECK=$(/usr/bin/python3 - "$T_TMP/sink" <<'PY'
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1] + "/7.eml", "rb").read(), policy=email.policy.default)
assert m["Subject"] == "A quick question", m["Subject"]
assert "    What almost stopped you from upgrading?" in m.get_content(), m.get_content()
assert m["X-Autorun-Campaign"]
print("ok")
PY
)
t_expect_eq "research: the question is in the message" "$CHECK" "ok"
t_run run research-email --input '{"segment":"plan","params":["pro"],"question":"What almost stopped you from upgrading?"}'
t_expect_eq "research: the same request again sends nothing new" "$(t_py 'print(doc["sent"], doc["skipped"])')" "0 $PRO"
t_run run research-email --input '{"segment":"plan = ? OR 1=1","params":["pro"],"question":"x"}'
t_expect_rc "research: a condition not in the list is refused" 1
t_expect_contains "research: the refusal lists the segments" "$ERR" "input.segment must be one of: all"
t_run run research-email --input '{"segment":"country","params":["DE'"'"' OR '"'"'1'"'"'='"'"'1"],"question":"x"}'
t_expect_rc "research: a param is bound, not spliced" 0
t_expect_eq "research: the injection attempt matched nobody" "$(t_py 'print(doc["recipients"], doc["sent"])')" "0 0"
t_run run research-email --input '{"segment":"plan","params":[],"question":"x"}'
t_expect_contains "research: wrong number of params explained" "$ERR" "segment plan takes 1 param(s): plan"
t_run run research-email --input '{"segment":"all","question":"x","limit":5}'
t_expect_contains "research: a segment over the limit is refused" "$ERR" "RangeError: segment all has 50 customers, more than the limit of 5"
BEFORE=$(wc -l < "$T_TMP/sink/envelopes.jsonl" | tr -d ' ')
t_run run research-email --dry-run --input '{"segment":"detractors","question":"What should we fix first?"}'
t_expect_eq "research dry run: who would get it" "$(t_py 'print(doc["sent"], doc["wouldSend"] == doc["recipients"] > 0)')" "0 True"
t_expect_eq "research dry run: nothing sent" "$(wc -l < "$T_TMP/sink/envelopes.jsonl" | tr -d ' ')" "$BEFORE"

t_done
