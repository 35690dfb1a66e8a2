#!/bin/bash
# Poll triggers in `autorun serve` against tests/servers/fake_zendesk.py (which also plays a
# Slack incoming webhook): the baseline on the first poll, one run per new ticket, updated
# tickets not firing again, kill -9 and restart without duplicates or losses, backfill: true,
# 429 and 5xx (error visible in history and `autorun list`, backoff, recovery), and the
# new-ticket-triage recipe tagging urgent tickets and posting them to Slack.
. "$(dirname "$0")/lib.sh"

FAKE="$AR_SOURCE_DIR/tests/servers/fake_zendesk.py"
export AUTORUN_HTTP_ATTEMPTS=2
export AUTORUN_HTTP_BACKOFF=100ms
export ZENDESK_EMAIL=agent@example.com
export ZENDESK_TOKEN=zd-token-that-must-never-be-stored-77

ZPORT=$(t_free_port)
/usr/bin/python3 "$FAKE" --port "$ZPORT" --page-size 2 --timeout 280 --email "$ZENDESK_EMAIL" \
    --token "$ZENDESK_TOKEN" >"$T_TMP/fake.log" 2>&1 &
t_track $!
t_wait_port "$ZPORT" || echo "fake server did not start: $(cat "$T_TMP/fake.log")"
ZBASE="http://127.0.0.1:$ZPORT"
export ZENDESK_API_BASE="$ZBASE"
export SLACK_WEBHOOK_URL="$ZBASE/slack/webhook"

# Python over the fake's /admin/state as d.
zstate() {
    /usr/bin/python3 -c "import json, urllib.request, sys
d = json.load(urllib.request.urlopen('$ZBASE/admin/state'))
print(eval(sys.argv[1]))" "$1"
}
zpost() { # PATH JSON
    /usr/bin/python3 -c "import urllib.request, sys
r = urllib.request.Request('$ZBASE' + sys.argv[1], data=sys.argv[2].encode(), method='POST',
                           headers={'Content-Type': 'application/json'})
urllib.request.urlopen(r).read()" "$1" "$2"
}
ticket() { zpost /admin/tickets "$1"; }

# Waits until the fake has answered n more export requests than now (polls happened).
wait_polls() { # N
    local start i
    start=$(zstate 'd["exportRequests"]')
    for i in $(seq 1 125); do
        [ "$(zstate 'd["exportRequests"]')" -ge $((start + $1)) ] && return 0
        sleep 0.2
    done
    return 1
}
ids_of() { # RECIPE: the ticket ids its poll runs got, in order
    t_sql "SELECT group_concat(id, ',') FROM (SELECT json_extract(input, '\$.id') AS id FROM runs WHERE recipe='$1' AND trigger='poll' ORDER BY id)"
}

t_recipe tickets <<'JS'
exports.triggers = [{ poll: 'zendesk.newTickets', every: '1s' }];
exports.run = function (t) { return { id: t.id, subject: t.subject }; };
JS
t_recipe backfilled <<'JS'
exports.triggers = [{ poll: 'zendesk.newTickets', every: '1s', backfill: true }];
exports.run = function (t) { return { id: t.id }; };
JS
# One ticket per page and per poll: the baseline spans two polls, later tickets come a page at
# a time (more: true polls again at once).
t_recipe paged <<'JS'
exports.triggers = [{ poll: 'zendesk.newTickets', every: '1s', perPage: 1, maxPages: 1 }];
exports.run = function (t) { return { id: t.id }; };
JS

# Two tickets exist before the first poll.
ticket '{"subject": "old one"}'
ticket '{"subject": "old two"}'

# ---- Baseline: the first poll fires nothing (unless backfill: true) ----
start_serve
if wait_sql "SELECT count(*) FROM poll_state WHERE recipe='tickets' AND baseline_at IS NOT NULL" "1"; then
    t_pass "baseline: recorded on the first poll"
else
    t_fail "baseline: recorded on the first poll" "$(tail -n 20 "$LOG")"
fi
wait_sql "SELECT count(*) FROM runs WHERE recipe='backfilled' AND status='succeeded'" "2"
t_expect_eq "backfill: true fires the existing tickets, once each" "$(ids_of backfilled)" "1,2"
wait_polls 3
t_expect_eq "baseline: no run for tickets that existed" \
    "$(t_sql "SELECT count(*) FROM runs WHERE recipe='tickets' AND trigger='poll'")" "0"
t_expect_eq "baseline: both tickets are in the seen set" \
    "$(t_sql "SELECT group_concat(item, ',') FROM (SELECT item FROM poll_seen WHERE recipe='tickets' ORDER BY item)")" "1,2"
t_expect_eq "polls that worked leave no run rows" \
    "$(t_sql "SELECT count(*) FROM runs WHERE trigger='poll-check' AND status != 'running'")" "0"

# ---- New tickets: exactly one run each (a page holds 2 tickets: pagination too) ----
ticket '{"subject": "new three"}'
ticket '{"subject": "new four"}'
ticket '{"subject": "new five"}'
if wait_sql "SELECT count(*) FROM runs WHERE recipe='tickets' AND trigger='poll' AND status='succeeded'" "3"; then
    t_pass "new tickets: three runs"
else
    t_fail "new tickets: three runs" "$(t_sql "SELECT id, trigger, status, error FROM runs")"
fi
t_expect_eq "new tickets: one run per ticket, in order" "$(ids_of tickets)" "3,4,5"
wait_sql "SELECT count(*) FROM runs WHERE recipe='paged' AND trigger='poll' AND status='succeeded'" "3"
t_expect_eq "pages: a baseline over two pages fired nothing, then each new ticket once" \
    "$(ids_of paged)" "3,4,5"
t_expect_eq "pages: the options make their own trigger" \
    "$(t_sql "SELECT count(*) FROM poll_state WHERE recipe='paged' AND trigger LIKE 'poll zendesk.newTickets %'")" "1"
t_expect_eq "new tickets: the event is the ticket" \
    "$(t_sql "SELECT json_extract(result, '\$.subject') FROM runs WHERE recipe='tickets' AND trigger='poll' ORDER BY id LIMIT 1")" \
    "new three"

# An update moves a ticket to the end of the export: it must not fire again.
/usr/bin/python3 -c "import urllib.request
r = urllib.request.Request('$ZBASE/api/v2/tickets/4.json', method='PUT',
    data=b'{\"ticket\": {\"status\": \"open\"}}', headers={'Content-Type': 'application/json',
    'Authorization': 'Basic ' + __import__('base64').b64encode(b'$ZENDESK_EMAIL/token:$ZENDESK_TOKEN').decode()})
urllib.request.urlopen(r).read()"
wait_polls 3
t_expect_eq "updated ticket: no second run" "$(ids_of tickets)" "3,4,5"

# ---- kill -9 with tickets arriving, even with a poll under way: none lost, none doubled ----
zpost /admin/latency '{"ms": 400}'
ticket '{"subject": "six"}'
ticket '{"subject": "seven"}'
wait_polls 1
stop_serve KILL
ticket '{"subject": "eight (while down)"}'
zpost /admin/latency '{"ms": 0}'
start_serve
if wait_sql "SELECT count(*) FROM runs WHERE recipe='tickets' AND trigger='poll' AND status='succeeded'" "6"; then
    t_pass "restart: the runs of the new tickets happen"
else
    t_fail "restart: the runs of the new tickets happen" "$(t_sql "SELECT id, recipe, trigger, status, input FROM runs WHERE recipe='tickets'")"
fi
wait_polls 3
t_expect_eq "restart: each ticket exactly once" "$(ids_of tickets)" "3,4,5,6,7,8"
t_expect_eq "restart: backfilled recipe also exactly once per ticket" \
    "$(t_sql "SELECT count(*) || '|' || count(DISTINCT json_extract(input, '\$.id')) FROM runs WHERE recipe='backfilled' AND trigger='poll'")" \
    "8|8"
t_expect_eq "restart: no poll left running or interrupted" \
    "$(t_sql "SELECT count(*) FROM runs WHERE trigger='poll-check' AND status IN ('running', 'interrupted')")" "0"

# ---- 429 with Retry-After: http waits it out, the poll works ----
FAILED=$(zstate 'd["failed"]')
zpost /admin/fail '{"count": 1, "status": 429, "retryAfter": 1}'
ticket '{"subject": "nine (after a 429)"}'
wait_sql "SELECT count(*) FROM runs WHERE recipe='tickets' AND trigger='poll' AND status='succeeded'" "7"
t_expect_eq "429: the ticket fired once the limit passed" "$(ids_of tickets)" "3,4,5,6,7,8,9"
t_expect_eq "429: the server did answer 429 once" "$(zstate 'd["failed"]')" "$((FAILED + 1))"

# ---- 5xx beyond http's retries: the poll fails visibly, backs off, recovers ----
zpost /admin/fail '{"count": 0, "seconds": 3, "status": 503}'
ticket '{"subject": "ten (during an outage)"}'
if wait_sql "SELECT count(*) > 0 FROM runs WHERE recipe='tickets' AND trigger='poll-check' AND status='failed'" "1"; then
    t_pass "5xx: a failed poll is a failed run in history"
else
    t_fail "5xx: a failed poll is a failed run in history" "$(t_sql "SELECT id, recipe, trigger, status, error FROM runs ORDER BY id DESC LIMIT 5")"
fi
t_expect_contains "5xx: the failed poll says why" \
    "$(t_sql "SELECT error FROM runs WHERE recipe='tickets' AND trigger='poll-check' AND status='failed' LIMIT 1")" \
    "HttpError: 503"
t_expect_eq "5xx: the failed poll keeps its http steps" \
    "$(t_sql "SELECT count(*) > 0 FROM steps WHERE run_id = (SELECT min(id) FROM runs WHERE recipe='tickets' AND trigger='poll-check') AND kind='http'")" "1"
t_expect_contains "5xx: a warning in the service log" "$(cat "$LOG")" \
    "tickets: zendesk.newTickets failed (1 in a row"
t_run list
t_expect_contains "5xx: autorun list shows the failing poll" "$OUT" "(zendesk.newTickets failing, "
if wait_sql "SELECT count(*) FROM runs WHERE recipe='tickets' AND trigger='poll' AND status='succeeded'" "8"; then
    t_pass "5xx: the poll recovers and the ticket fires"
else
    t_fail "5xx: the poll recovers and the ticket fires" "$(tail -n 20 "$LOG")"
fi
t_expect_eq "5xx: still exactly once per ticket" "$(ids_of tickets)" "3,4,5,6,7,8,9,10"
t_expect_eq "5xx: the error count is reset, the last error kept" \
    "$(t_sql "SELECT errors, last_error LIKE '%503%' FROM poll_state WHERE recipe='tickets'")" "0|1"
t_expect_contains "5xx: the backoff is logged" "$(cat "$LOG")" "works again after"
t_expect_not_contains "no secret in history" \
    "$(t_sql "SELECT group_concat(coalesce(input,'') || coalesce(error,'') || coalesce(result,''), ' ') FROM runs") $(t_sql "SELECT group_concat(name || coalesce(detail,''), ' ') FROM steps")" \
    "$ZENDESK_TOKEN"
# SIGTERM with a poll under way: the poll is cancelled (nothing of it recorded), the service
# stops without waiting for it.
zpost /admin/latency '{"ms": 1500}'
wait_polls 1
stop_serve TERM
serve_clean "poll"
zpost /admin/latency '{"ms": 0}'
t_expect_eq "stop: the cancelled poll left no run row" \
    "$(t_sql "SELECT count(*) FROM runs WHERE trigger='poll-check' AND status != 'failed'")" "0"
t_expect_contains "stop: the service logged the stop" "$(cat "$LOG")" "stopped"

# ---- The triage recipe: tags urgent tickets, posts them to Slack ----
rm -f "$AUTORUN_RECIPES/tickets.js" "$AUTORUN_RECIPES/backfilled.js" "$AUTORUN_RECIPES/paged.js"
sed "s/every: '1m'/every: '1s'/" "$AR_SOURCE_DIR/recipes/new-ticket-triage.js" \
    >"$AUTORUN_RECIPES/new-ticket-triage.js"
t_run check new-ticket-triage
t_expect_rc "triage: autorun check passes" 0
start_serve
wait_sql "SELECT count(*) FROM poll_state WHERE recipe='new-ticket-triage' AND baseline_at IS NOT NULL" "1"
ticket '{"subject": "Checkout is down for everyone", "priority": "normal"}'
ticket '{"subject": "Question about invoices", "priority": "high"}'
ticket '{"subject": "How do I change my avatar?", "priority": "low"}'
if wait_sql "SELECT count(*) FROM runs WHERE recipe='new-ticket-triage' AND trigger='poll' AND status='succeeded'" "3"; then
    t_pass "triage: one run per new ticket"
else
    t_fail "triage: one run per new ticket" "$(t_sql "SELECT id, trigger, status, error FROM runs WHERE recipe='new-ticket-triage'")"
fi
t_expect_eq "triage: no run for the tickets before its baseline" \
    "$(t_sql "SELECT count(*) FROM runs WHERE recipe='new-ticket-triage' AND trigger='poll' AND json_extract(input, '\$.id') <= 10")" "0"
# The runs of the two tickets overlap, so their updates may arrive in either order.
t_expect_eq "triage: the urgent tickets were tagged (additional_tags)" \
    "$(zstate 'sorted((u["id"], u["ticket"]) for u in d["updates"] if u["id"] >= 11)')" \
    "[(11, {'additional_tags': ['urgent']}), (12, {'additional_tags': ['urgent']})]"
t_expect_eq "triage: the tags are on the tickets" \
    "$(zstate '[t["tags"] for t in d["tickets"] if t["id"] >= 11]')" "[['urgent'], ['urgent'], []]"
t_expect_eq "triage: two Slack posts, naming ticket and reason" \
    "$(zstate 'sorted(("#11" in p["text"] and "down" in p["text"], "#12" in p["text"] and "priority high" in p["text"]) for p in d["slack"])')" \
    "[(False, True), (True, False)]"
t_expect_eq "triage: results say urgent or not" \
    "$(t_sql "SELECT group_concat(json_extract(result, '\$.urgent'), ',') FROM (SELECT result FROM runs WHERE recipe='new-ticket-triage' AND trigger='poll' ORDER BY id)")" \
    "1,1,0"
stop_serve TERM
serve_clean "triage"

# ---- Dry run of the recipe on one ticket: nothing tagged or posted ----
UPDATES=$(zstate 'len(d["updates"])')
t_run run new-ticket-triage --dry-run --input '{"id": 13, "subject": "Refund please", "priority": "normal"}'
t_expect_rc "triage dry run: succeeds" 0
t_expect_eq "triage dry run: reports what it would do" "$(t_py 'print(doc["urgent"], doc["dryRun"])')" "True True"
t_expect_eq "triage dry run: nothing reached the server" "$(zstate 'len(d["updates"]), len(d["slack"])')" "($UPDATES, 2)"

t_done
