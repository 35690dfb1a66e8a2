#!/bin/bash
# A throwaway PostgreSQL server for tests, from Debian's postgresql package.
#
#   eval "$(bash pg.sh start)"   sets PG_DIR, PG_URL (postgres://postgres@127.0.0.1:PORT/postgres)
#                                and PG_PID; exits non-zero, saying why, if it cannot start
#   bash pg.sh stop "$PG_DIR"    ends the server by its PID and removes PG_DIR
#
# The server listens on 127.0.0.1 (and a socket in PG_DIR) on a free port, trusts local
# connections, keeps its data in a fresh directory and runs without fsync. PostgreSQL
# refuses to run as root, so under root it runs as $AR_PG_USER (default: nobody). It
# stops by itself after $AR_PG_LIFETIME seconds (default 900): a test that dies cannot
# leave it running for long.
set -u

die() { echo "pg.sh: $*" >&2; exit 1; }

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] || return 1
    echo "$d"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local bin dir port pid i lifetime=${AR_PG_LIFETIME:-900}
    bin=$(pg_bindir) || die "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
    PG_USER=${AR_PG_USER:-nobody}
    if [ "$(id -u)" = 0 ]; then
        id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$PG_USER" ||
            die "cannot create the user $PG_USER to run PostgreSQL as"
    fi
    dir=$(mktemp -d /tmp/autorun-pg.XXXXXX) || die "cannot create a directory in /tmp"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$PG_USER" "$dir"
    if ! as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
            --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        die "initdb failed"
    fi
    port=$(free_port)
    # Output goes to a file: the caller reads this script's stdout until it closes.
    as_owner "$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$dir" -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=60 >"$dir/server.log" 2>&1 </dev/null &
    for i in $(seq 1 300); do
        if [ -f "$dir/data/postmaster.pid" ] &&
            "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
    if [ -z "$pid" ] || ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        cat "$dir/server.log" >&2
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
        rm -rf "$dir"
        die "the server did not become ready"
    fi
    echo "$pid" >"$dir/pid"
    # The watchdog: fast shutdown once the lifetime is over.
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep "$lifetime" &
        sp=$!
        wait "$sp" && kill -INT "$pid"
    ) >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/watchdog.pid"
    echo "PG_DIR=$dir"
    echo "PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
    echo "PG_PID=$pid"
}

stop() {
    local dir=$1 pid wd i
    case "$dir" in
        /tmp/autorun-pg.*) ;;
        *) die "stop: $dir is not a directory this script made" ;;
    esac
    [ -d "$dir" ] || return 0
    pid=$(cat "$dir/pid" 2>/dev/null)
    wd=$(cat "$dir/watchdog.pid" 2>/dev/null)
    if [ -n "$pid" ]; then
        kill -INT "$pid" 2>/dev/null # fast shutdown: ends sessions, no waiting for clients
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    [ -n "$wd" ] && kill "$wd" 2>/dev/null
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:?usage: pg.sh stop DIR}" ;;
    *) die "usage: pg.sh start | pg.sh stop DIR" ;;
esac
