#!/bin/bash
# `autorun serve` cron start-up: a schedule missed while the service was down fires once
# (missed: 'once', the default) or not at all ('skip'); a schedule seen for the first time
# starts from now; a fire that finds a concurrency: 1 recipe busy is recorded as skipped with
# the reason; fires are recorded durably, so a restart does not fire again. Also retention:
# `autorun prune` deletes old runs and the history file shrinks.
. "$(dirname "$0")/lib.sh"

PORT=$(t_free_port)
runs() { t_sql "SELECT count(*) FROM runs WHERE recipe='$1' ${2:-}"; }

# Yearly schedules: none comes due by itself while the test runs.
t_recipe once <<'JS'
exports.triggers = [{ cron: '0 0 1 1 *', tz: 'UTC' }];
exports.run = function (event, ctx) { return { scheduledAt: event.scheduledAt, trigger: ctx.trigger }; };
JS
t_recipe skip <<'JS'
exports.triggers = [{ cron: '0 0 1 1 *', tz: 'UTC', missed: 'skip' }];
exports.run = function (event) { return event; };
JS
t_recipe fresh <<'JS'
exports.triggers = [{ cron: '0 0 1 1 *', tz: 'UTC' }];
exports.run = function (event) { return event; };
JS
t_recipe busy <<'JS'
exports.triggers = [{ cron: '0 0 1 1 *', tz: 'UTC' }];
exports.concurrency = 1;
exports.run = function (event) { return { scheduledAt: event.scheduledAt || null }; };
JS

# The state database exists (schema migrated) before the service first starts.
t_run history
t_expect_rc "history creates the state database" 0
NOW_MS=$(($(date +%s) * 1000))
TWO_YEARS_AGO=$((NOW_MS - 2 * 366 * 24 * 3600 * 1000))
LATEST=$(/usr/bin/python3 -c 'import datetime; n=datetime.datetime.now(datetime.timezone.utc); print("%d-01-01T00:00:00+00:00" % n.year)')
t_sql "INSERT INTO cron_state (recipe, schedule, last_fire) VALUES
       ('once', '0 0 1 1 * UTC', $TWO_YEARS_AGO),
       ('skip', '0 0 1 1 * UTC', $TWO_YEARS_AGO),
       ('busy', '0 0 1 1 * UTC', $TWO_YEARS_AGO);
       INSERT INTO runs (recipe, trigger, status, attempt, queued_at, input)
       VALUES ('busy', 'webhook', 'queued', 1, $NOW_MS, '{\"left\":\"queued\"}');"
BUSY_QUEUED=$(t_sql "SELECT max(id) FROM runs WHERE recipe='busy'")

start_serve
until_true 100 drained || t_fail "start-up runs finish" "$(tail "$LOG")"
t_expect_eq "missed: 'once' fires once after downtime" "$(runs once)" 1
t_run show "$(t_sql "SELECT id FROM runs WHERE recipe='once'")" --json
t_expect_eq "... for the latest missed time" "$(t_py 'print(doc["result"]["scheduledAt"])')" "$LATEST"
t_expect_eq "... as a cron run that succeeded" "$(t_py 'print(doc["trigger"], doc["status"], doc["result"]["trigger"])')" "cron succeeded cron"
t_expect_eq "missed: 'skip' runs nothing" "$(runs skip)" 0
t_expect_eq "missed: 'skip' still records the missed fire" \
    "$(t_sql "SELECT last_fire > $TWO_YEARS_AGO FROM cron_state WHERE recipe='skip'")" 1
t_expect_eq "a schedule seen first starts from now: no run" "$(runs fresh)" 0
t_expect_eq "a schedule seen first is recorded" \
    "$(t_sql "SELECT last_fire >= $NOW_MS FROM cron_state WHERE recipe='fresh'")" 1
t_expect_eq "the run left queued ran" "$(t_sql "SELECT status FROM runs WHERE id=$BUSY_QUEUED")" succeeded
SKIPPED=$(t_sql "SELECT id FROM runs WHERE recipe='busy' AND status='skipped'")
t_expect_eq "busy concurrency: 1 recipe: the cron fire is recorded as skipped" "$(runs busy "AND status='skipped' AND trigger='cron'")" 1
t_expect_contains "... with the reason" "$(t_sql "SELECT error FROM runs WHERE id=${SKIPPED:-0}")" "still waiting to start"
t_run history busy --status skipped --json
t_expect_eq "history --status skipped lists it" "$(t_py 'print(len(doc), doc[0]["status"])')" "1 skipped"
t_expect_contains "metrics count skipped fires" "$(curl -s "http://127.0.0.1:$PORT/metrics")" \
    'autorun_runs_total{recipe="busy",status="skipped"} 1'
t_expect_eq "list shows the next fire" "$("$AUTORUN" list --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r.get("nextCron") or r.get("next")))' 2>/dev/null)" 4
stop_serve
serve_clean "serve $SERVES"

# A restart right away: every fire is recorded, so nothing fires again.
start_serve
until_true 50 grep -q "serving on" "$LOG"
stop_serve
serve_clean "serve $SERVES"
t_expect_eq "restart: no second fire" "$(runs once),$(runs skip),$(runs fresh)" "1,0,0"

# ---- retention: prune deletes old runs, the file shrinks ----
BIG=$(head -c 4000 /dev/zero | tr '\0' 'r')
OLD_MS=$((NOW_MS - 40 * 24 * 3600 * 1000))
t_sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
       INSERT INTO runs (recipe, trigger, status, attempt, queued_at, started_at, finished_at, input, result)
       SELECT 'old', 'cron', 'succeeded', 1, $OLD_MS, $OLD_MS, $OLD_MS, '{}', '\"$BIG' || i || '\"' FROM n;
       INSERT INTO logs (run_id, seq, at, level, message)
       SELECT id, 1, $OLD_MS, 'info', 'old log line' FROM runs WHERE recipe='old';
       PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
size() { stat -c %s "$AUTORUN_HOME/history.db"; }
BEFORE=$(size)
KEEP=$(t_sql "SELECT count(*) FROM runs WHERE recipe!='old'")
t_run prune --older-than 30d
t_expect_rc "prune exits 0" 0
t_expect_contains "prune says how many" "$ERR" "pruned 3000 runs"
t_expect_eq "old runs are gone" "$(runs old)" 0
t_expect_eq "their logs are gone" "$(t_sql "SELECT count(*) FROM logs WHERE message='old log line'")" 0
t_expect_eq "recent runs stay" "$(t_sql "SELECT count(*) FROM runs WHERE recipe!='old'")" "$KEEP"
AFTER=$(size)
if [ "$AFTER" -lt $((BEFORE / 4)) ]; then
    t_pass "the history file shrinks ($BEFORE -> $AFTER bytes)"
else
    t_fail "the history file shrinks" "$BEFORE -> $AFTER bytes"
fi
WAL=$(stat -c %s "$AUTORUN_HOME/history.db-wal" 2>/dev/null || echo 0)
if [ "$WAL" -lt 1048576 ]; then t_pass "the WAL is bounded after prune ($WAL bytes)"; else t_fail "the WAL is bounded after prune" "$WAL bytes"; fi
t_expect_eq "no sanitizer report in the service logs" \
    "$(cat "$T_TMP"/serve*.log | grep -cE 'runtime error|Sanitizer')" 0
t_done
