#!/usr/bin/env bash
# list, check, new, help, --version, prune and configuration errors.
. "$(dirname "$0")/lib.sh"

t_run --version
t_expect_rc "--version" 0
t_expect_contains "--version prints the version" "$OUT" "autorun "
t_run --help
t_expect_contains "--help lists run" "$OUT" "autorun run RECIPE"
t_run help run
t_expect_contains "help run explains --dry-run" "$OUT" "--dry-run"
t_run help config
t_expect_contains "help config lists settings and variables" "$OUT" "AUTORUN_RUN_TIMEOUT"
t_run help nosuch
t_expect_rc "help of an unknown command exits 2" 2
t_run frobnicate
t_expect_rc "unknown command exits 2" 2
t_run
t_expect_rc "no command exits 2" 2

t_run list
t_expect_contains "list with no recipes says how to start" "$ERR" "autorun new"

t_run new daily-report --trigger cron
t_expect_rc "new scaffolds a recipe" 0
t_expect_contains "new prints the path" "$OUT" "daily-report.js"
t_run new daily-report
t_expect_rc "new refuses to overwrite" 2
t_run new 'bad name'
t_expect_rc "new refuses a bad name" 2
t_run new hook --trigger webhook
t_run new thing --trigger smoke-signal
t_expect_rc "new refuses an unknown trigger" 2
t_run run daily-report
t_expect_rc "a scaffolded recipe runs" 0
t_run check
t_expect_rc "scaffolded recipes pass check" 0
t_expect_contains "check counts recipes" "$ERR" "2 recipes ok"

t_recipe broken <<'JS'
exports.triggers = [
  { cron: '0 25 * * *' },
  { cron: '*/5 * * * *', tz: 'Mars/Olympus' },
  { webhook: 'hooks/no-slash', respond: 'maybe' },
  { webhook: '/hooks/x', verify: { scheme: 'carrier-pigeon', secret: 'NOPE_SECRET' } },
  { poll: 'nodot', every: 'often' },
  { newRow: { db: 'customers', table: 5 } },
  { cron: '* * * * *', webhook: '/both' },
  { }
];
exports.run = function () {};
JS
t_run check broken
t_expect_rc "check fails on bad triggers" 2
t_expect_contains "bad cron field named" "$ERR" "broken.js:2: cron '0 25 * * *': hour"
t_expect_contains "bad time zone" "$ERR" "unknown time zone 'Mars/Olympus'"
t_expect_contains "webhook path" "$ERR" "the path must start with /"
t_expect_contains "webhook respond" "$ERR" "respond must be 'accepted' or 'result'"
t_expect_contains "verify scheme" "$ERR" "verify.scheme 'carrier-pigeon'"
t_expect_contains "verify secret missing" "$ERR" "secret 'NOPE_SECRET' is not set"
t_expect_contains "poll name" "$ERR" "poll must name 'plugin.function'"
t_expect_contains "poll every" "$ERR" "every: expected a duration"
t_expect_contains "newRow table" "$ERR" "newRow.table must be a string"
t_expect_contains "two kinds in one trigger" "$ERR" "more than one kind"
t_expect_contains "empty trigger" "$ERR" "has no cron, webhook, poll or newRow"
t_expect_contains "every problem, counted" "$ERR" "problems"

t_run list
t_expect_rc "list" 0
t_expect_contains "list shows triggers" "$OUT" "cron 0 9 * * MON-FRI UTC"
t_expect_contains "list shows a webhook" "$OUT" "webhook /hooks/hook"
t_expect_contains "list shows last status" "$OUT" "succeeded"
t_run list --json
t_py 'r = {x["name"]: x for x in doc}; assert r["daily-report"]["nextCron"].endswith("Z") and r["daily-report"]["lastRun"]["status"] == "succeeded" and r["hook"]["lastRun"] is None' \
    && t_pass "list --json" || t_fail "list --json" "$OUT"

# Configuration errors are usage errors with file:line.
printf 'run.timeout = 5m\nno_such = 1\n' > "$T_TMP/bad.conf"
t_run --config "$T_TMP/bad.conf" list
t_expect_rc "a bad config file exits 2" 2
t_expect_contains "config error names file:line" "$ERR" "bad.conf:2: unknown setting 'no_such'"
AUTORUN_RUN_TIMEOUT=forever t_run list
t_expect_rc "a bad environment setting exits 2" 2

# Prune removes old runs and the database shrinks back.
for i in $(seq 1 30); do "$AUTORUN" run daily-report >/dev/null 2>&1; done
t_sql "UPDATE runs SET started_at = started_at - 40*86400000, finished_at = finished_at - 40*86400000"
t_run prune
t_expect_rc "prune" 0
t_expect_contains "prune reports" "$ERR" "pruned"
t_expect_eq "old runs are gone" "$(t_sql 'SELECT count(*) FROM runs')" "0"
t_expect_eq "their logs are gone" "$(t_sql 'SELECT count(*) FROM logs')" "0"
t_run prune --older-than soon
t_expect_rc "prune with a bad age exits 2" 2

# An older history.db is migrated in place, keeping its runs; a newer one is refused.
"$AUTORUN" run daily-report >/dev/null 2>&1
t_sql "CREATE INDEX runs_by_start ON runs(started_at); DROP INDEX runs_by_age;
       DROP INDEX runs_live; CREATE INDEX runs_by_status ON runs(status, id);
       PRAGMA user_version = 4;"
t_run history --json
t_expect_rc "history on a version 4 database" 0
t_expect_contains "its runs are still listed" "$OUT" '"daily-report"'
t_expect_eq "it is now at the current version" "$(t_sql 'PRAGMA user_version')" "7"
t_expect_eq "indexes after the migrations" \
    "$(t_sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master
              WHERE type='index' AND name LIKE 'runs_%' ORDER BY name)")" \
    "runs_by_age runs_by_recipe runs_live"
# The queue's lookups must stay on the small partial index, not scan every run.
t_expect_contains "queued runs are found through runs_live" \
    "$(t_sql "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE status='queued' ORDER BY id")" \
    "INDEX runs_live"
t_expect_contains "running runs too" \
    "$(t_sql "EXPLAIN QUERY PLAN UPDATE runs SET status='interrupted' WHERE status='running'")" \
    "INDEX runs_live"
t_sql "PRAGMA user_version = 99"
t_run history
t_expect_rc "a newer database is refused" 2
t_expect_contains "saying why" "$ERR" "newer than this autorun"
t_sql "PRAGMA user_version = 7"

t_done
