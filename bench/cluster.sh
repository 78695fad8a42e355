#!/usr/bin/env bash
# A Switchboard cluster on loopback for switchboard-bench: a NATS server, a PostgreSQL
# server (both in a temporary directory) and N nodes sharing them, each node on its own
# port (7071, 7072, …) with `ulimit -n` at the hard limit.
#
#   bench/cluster.sh start N     start them; prints the --server and --server-pid lists
#   bench/cluster.sh stop        stop everything and remove the directory
#
# Needs nats-server and PostgreSQL's server binaries (Debian: nats-server, postgresql),
# and target/release/switchboard (cargo build --release). The admin password is
# $SWITCHBOARD_ADMIN_PASSWORD (default: a random one, printed).
set -euo pipefail

STATE=${SB_CLUSTER_DIR:-/tmp/switchboard-bench-cluster}
BIN=${SB_BIN:-target/release/switchboard}
NATS_PORT=${NATS_PORT:-4322}
PG_PORT=${PG_PORT:-5433}

pg_bin() {
    local dir
    dir=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || echo /nonexistent)")")
    if [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

as_pg() {
    # PostgreSQL refuses to run as root: run it as the postgres user then.
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    local n=$1
    mkdir -p "$STATE"
    [ "$(id -u)" = 0 ] && chown postgres "$STATE"
    local pg
    pg=$(pg_bin)
    as_pg "$pg/initdb" -U switchboard --auth=trust --no-sync -E UTF8 --locale=C -D "$STATE/pg" >/dev/null
    as_pg "$pg/postgres" -D "$STATE/pg" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$STATE" -c max_connections=400 -c shared_buffers=256MB \
        >"$STATE/pg.log" 2>&1 &
    echo $! >"$STATE/pg.pid"
    nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$STATE/nats.log" 2>&1 &
    echo $! >"$STATE/nats.pid"
    for _ in $(seq 50); do
        "$pg/pg_isready" -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1 && break
        sleep 0.2
    done
    as_pg "$pg/psql" -h 127.0.0.1 -p "$PG_PORT" -U switchboard -d postgres -qc "CREATE DATABASE bench" >/dev/null
    local password=${SWITCHBOARD_ADMIN_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
    local key
    key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    local servers=() pids=()
    for i in $(seq "$n"); do
        local port=$((7070 + i))
        mkdir -p "$STATE/n$i"
        (
            ulimit -n "$(ulimit -Hn)"
            export SWITCHBOARD_SERVER_BIND="127.0.0.1:$port" SWITCHBOARD_SERVER_DATA_DIR="$STATE/n$i" \
                SWITCHBOARD_STORE_BACKEND=postgres \
                SWITCHBOARD_STORE_URL="postgres://switchboard@127.0.0.1:$PG_PORT/bench" \
                SWITCHBOARD_CLUSTER_NATS_URL="nats://127.0.0.1:$NATS_PORT" SWITCHBOARD_CLUSTER_NODE="n$i" \
                SWITCHBOARD_AUTH_JWT_SECRET="$key" SWITCHBOARD_ADMIN_PASSWORD="$password" \
                SWITCHBOARD_LIMITS_MAX_CONNECTIONS_PER_USER=100000 RUST_LOG=warn
            exec "$BIN" >"$STATE/n$i.log" 2>&1
        ) &
        echo $! >"$STATE/n$i.pid"
        servers+=("http://127.0.0.1:$port")
        pids+=("$(cat "$STATE/n$i.pid")")
        # One at a time: the first node creates the schema.
        for _ in $(seq 100); do
            curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
            sleep 0.2
        done
    done
    local IFS=,
    echo "admin password: $password"
    echo "--server ${servers[*]} --server-pid ${pids[*]}"
}

stop() {
    for f in "$STATE"/n*.pid "$STATE"/nats.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    [ -d "$STATE/pg" ] && as_pg "$(pg_bin)/pg_ctl" -D "$STATE/pg" -m fast stop >/dev/null 2>&1 || true
    sleep 1
    rm -rf "$STATE"
}

case "${1:-}" in
    start) start "${2:-2}" ;;
    stop) stop ;;
    *) echo "usage: $0 start N | stop" >&2; exit 2 ;;
esac
