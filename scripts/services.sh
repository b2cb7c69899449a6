#!/usr/bin/env bash
# Makes sure the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379)
# answer, starting them if they do not. Later features (shared state, the
# PostgreSQL request log) test against them for real.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

wait_for() { # name, check function
    for _ in $(seq 1 50); do "$2" && return 0; sleep 0.2; done
    echo "services: $1 did not come up" >&2
    return 1
}

if pg_up; then
    echo "services: PostgreSQL answers"
elif command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    wait_for PostgreSQL pg_up
else
    echo "services: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
fi

if redis_up; then
    echo "services: Redis answers"
elif command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for Redis redis_up
else
    echo "services: Redis is not installed (apt-get install redis-server)" >&2
    exit 1
fi
