#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer at their standard local addresses; start them if installed but stopped.
set -u
fail() { echo "ERROR: $*" >&2; exit 1; }

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || fail "PostgreSQL is not installed or will not start: the tests need it on 127.0.0.1:5432 (trust auth, database 'test'). Install it with 'apt-get install postgresql'."
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "Redis is not answering on 127.0.0.1:6379; starting it"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || fail "Redis is not installed or will not start: the tests need it on 127.0.0.1:6379. Install it with 'apt-get install redis-server'."
fi
echo "PostgreSQL and Redis answer."
