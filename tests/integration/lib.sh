# Shared helpers for integration tests: each test sources this, gets a private
# state directory and recipes directory, and asserts on the real binary's output.
set -u
: "${AUTORUN:?AUTORUN must point at the autorun binary}"
: "${AR_SOURCE_DIR:?AR_SOURCE_DIR must point at the source tree}"

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/autorun-test.XXXXXX")
export AUTORUN_HOME="$T_TMP/home"
export AUTORUN_RECIPES="$T_TMP/recipes"
export AUTORUN_PLUGINS="$AR_SOURCE_DIR/plugins"
export NO_COLOR=1
mkdir -p "$AUTORUN_RECIPES"
T_FAILS=0
T_PASSES=0
T_PIDS=()

t_cleanup() {
    local pid
    for pid in "${T_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# Remembers a background process this test started, so it is ended at exit.
t_track() { T_PIDS+=("$1"); }

t_pass() { T_PASSES=$((T_PASSES + 1)); echo "ok - $1"; }
t_fail() { T_FAILS=$((T_FAILS + 1)); echo "not ok - $1"; shift; for l in "$@"; do echo "#   $l"; done; }

# Writes a recipe from stdin: t_recipe NAME <<'JS' ... JS
t_recipe() { cat > "$AUTORUN_RECIPES/$1.js"; }

# Runs autorun; sets OUT, ERR and RC.
t_run() {
    OUT=$("$AUTORUN" "$@" 2>"$T_TMP/stderr")
    RC=$?
    ERR=$(cat "$T_TMP/stderr")
}

t_expect_rc() { # NAME EXPECTED
    if [ "$RC" -eq "$2" ]; then t_pass "$1"; else t_fail "$1" "exit status $RC, expected $2" "stdout: $OUT" "stderr: $ERR"; fi
}

t_expect_contains() { # NAME HAYSTACK NEEDLE
    case "$2" in
        *"$3"*) t_pass "$1" ;;
        *) t_fail "$1" "expected to find: $3" "in: $2" ;;
    esac
}

t_expect_not_contains() { # NAME HAYSTACK NEEDLE
    case "$2" in
        *"$3"*) t_fail "$1" "did not expect: $3" "in: $2" ;;
        *) t_pass "$1" ;;
    esac
}

t_expect_eq() { # NAME ACTUAL EXPECTED
    if [ "$2" = "$3" ]; then t_pass "$1"; else t_fail "$1" "got:      $2" "expected: $3"; fi
}

# Queries the history database: t_sql "SELECT ..."
t_sql() { sqlite3 "$AUTORUN_HOME/history.db" "$1"; }

# A JSON field of OUT through python: t_json '.result.sent' style is not needed;
# use: t_py 'print(doc["result"]["sent"])' to evaluate against OUT parsed as doc.
t_py() { printf '%s' "$OUT" | /usr/bin/python3 -c "import json,sys; doc=json.load(sys.stdin); $1"; }

# A free TCP port on 127.0.0.1.
t_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Waits until a TCP port accepts connections (at most ~10 s).
t_wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Prints the summary line ctest and CI read, and sets the exit status.
# `autorun serve` in the background for the service tests. start_serve [ARGS...] starts the
# next one on $PORT (a free port chosen on first use, kept across restarts), logging to
# $T_TMP/serve-N.log; sets SPID and LOG.
SERVES=0
start_serve() {
    PORT=${PORT:-$(t_free_port)}
    SERVES=$((SERVES + 1))
    LOG="$T_TMP/serve-$SERVES.log"
    "$AUTORUN" serve --listen "127.0.0.1:$PORT" "$@" >"$LOG" 2>&1 &
    SPID=$!
    t_track $SPID
    t_wait_port "$PORT" || t_fail "serve $SERVES listens" "$(cat "$LOG")"
}
# wait_exit PID: waits (at most ~20 s) for the process to end; sets EXIT (or "running").
wait_exit() {
    local i
    for i in $(seq 1 200); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        EXIT=running
    else
        wait "$1"
        EXIT=$?
    fi
}
# stop_serve [SIGNAL]: stops the service start_serve started last (TERM by default); sets EXIT.
stop_serve() {
    kill "-${1:-TERM}" "$SPID" 2>/dev/null
    wait_exit "$SPID"
}
# After a stop by SIGTERM: a clean exit, and no sanitizer report in its log.
serve_clean() { # NAME
    t_expect_eq "$1: the service stops cleanly" "$EXIT" "0"
    t_expect_not_contains "$1: no sanitizer report" "$(cat "$LOG")" "Sanitizer"
    t_expect_not_contains "$1: no undefined behaviour" "$(cat "$LOG")" "runtime error:"
}
# until_true TRIES CMD...: runs CMD every 0.1 s until it succeeds; fails after TRIES tries.
until_true() {
    local n=$1 i
    shift
    for i in $(seq 1 "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
# No run queued or running.
drained() { [ "$(t_sql "SELECT count(*) FROM runs WHERE status IN ('queued','running')")" = 0 ]; }
# Waits (at most ~25 s) until the SQL query over history.db prints the expected text.
wait_sql() { # SQL EXPECTED
    local i
    for i in $(seq 1 125); do
        [ "$(t_sql "$1" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}

t_done() {
    echo "$T_PASSES passed, $T_FAILS failed"
    [ "$T_FAILS" -eq 0 ]
}
