#!/usr/bin/env bash
# Install what the tests need (PostgreSQL and MariaDB servers from Debian's
# packages, mysqlclient's headers, the toolkit with its test extras, Apache
# Cassandra from Maven Central), start the servers if they are down, and run
# the lint (ruff) and type check (mypy), then the whole test suite against
# SQLite, PostgreSQL, MariaDB and Cassandra.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k config
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/_common.sh"

need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null || need+=(mariadb-client)
command -v chromium >/dev/null || need+=(chromium)  # tests/test_report.py opens the report in it, headless
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || { echo "install PostgreSQL and MariaDB (or MySQL) servers first: ${need[*]}" >&2; exit 1; }
    echo "installing ${need[*]} ..."
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Start the servers if they are not running (no systemd needed). A package
# installed where no init system runs may leave no cluster: make the first one.
PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    echo "creating the PostgreSQL $PG_VERSION cluster ..."
    as_root pg_createcluster "$PG_VERSION" main >/dev/null
fi
if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
    echo "starting PostgreSQL ..."
    as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main start
fi
if ! mariadb-admin ping -h 127.0.0.1 --silent >/dev/null 2>&1 && ! mariadb-admin ping --silent >/dev/null 2>&1; then
    echo "starting MariaDB ..."
    if [ ! -d /var/lib/mysql/mysql ]; then
        as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    # mariadbd refuses to run as root: it must be told to switch to mysql.
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
fi
for _ in $(seq 60); do
    pg_ok=0; my_ok=0
    pg_isready -h 127.0.0.1 -q && pg_ok=1
    (mariadb-admin ping -h 127.0.0.1 --silent || mariadb-admin ping --silent) >/dev/null 2>&1 && my_ok=1
    [ $pg_ok = 1 ] && [ $my_ok = 1 ] && break
    sleep 1
done

# Test accounts. A stock install has no password-less TCP login; where that is
# so, create one reachable over 127.0.0.1 (as the local admin, through the socket).
PG_URL="${L1DB_TEST_PG_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/postgres}"
if ! psql "postgresql://postgres@127.0.0.1:5432/postgres" -qAtc 'select 1' >/dev/null 2>&1 && [ -z "${L1DB_TEST_PG_URL:-}" ]; then
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'l1dbtest'\"" >/dev/null
    PG_URL="postgresql+psycopg2://postgres:l1dbtest@127.0.0.1:5432/postgres"
fi
MY_URL="${L1DB_TEST_MYSQL_URL:-mysql+mysqldb://root@127.0.0.1:3306/}"
if ! mariadb -h 127.0.0.1 -u root -e 'select 1' >/dev/null 2>&1 && [ -z "${L1DB_TEST_MYSQL_URL:-}" ]; then
    as_root mariadb -e "CREATE USER IF NOT EXISTS 'l1dbtest'@'127.0.0.1' IDENTIFIED BY 'l1dbtest';
        GRANT ALL PRIVILEGES ON *.* TO 'l1dbtest'@'127.0.0.1'; FLUSH PRIVILEGES;"
    MY_URL="mysql+mysqldb://l1dbtest:l1dbtest@127.0.0.1:3306/"
fi
export L1DB_TEST_PG_URL="$PG_URL" L1DB_TEST_MYSQL_URL="$MY_URL"

. "$ROOT/scripts/_venv.sh" test,notebook
cd "$ROOT"
# The suite starts hundreds of Python processes: let them keep the toolkit's own compiled
# modules (__pycache__/, git-ignored) instead of compiling them in each one.
unset PYTHONDONTWRITEBYTECODE

# Apache Cassandra: fetched from Maven Central once, one node on 127.0.0.1 (run/cassandra/).
# It starts in the background while the lint and type checks run (a minute on a fresh clone).
# The nodes the tests start (this one, the 3-node cluster's, test_cassandra_server's) compile
# with C1 only: short-lived nodes that never reach C2's pay-off (the cluster tests' nodes used
# 38 % less CPU, BENCHMARKS.md). `cassandra_nodes status` names the option: not a node to measure.
export L1DB_CASSANDRA_JVM_OPTIONS="${L1DB_CASSANDRA_JVM_OPTIONS--XX:TieredStopAtLevel=1}"
cassandra_start=""
if [ -z "${L1DB_TEST_CASSANDRA_HOSTS:-}" ]; then
    # The run dir by its absolute path: tools that reach the nodes (nodetool for l1db_state)
    # find them from any working directory.
    export L1DB_CASSANDRA_RUN_DIR="${L1DB_CASSANDRA_RUN_DIR:-$ROOT/run/cassandra}"
    echo "starting Cassandra (cassandra_nodes start) in the background ..."
    cassandra_log="$(mktemp)"
    trap 'rm -f "$cassandra_log"' EXIT  # also when a check below fails
    # This shared node also keeps schema changes in its commit log without flushing them at once,
    # and skips fsync (Cassandra's own unit tests run so): every test makes and drops a keyspace,
    # 1.2 -> 0.45 node CPU-s per keyspace made (measured). Not for the nodes tests kill and restart.
    L1DB_CASSANDRA_JVM_OPTIONS="$L1DB_CASSANDRA_JVM_OPTIONS -Dcassandra.test.flush_local_schema_changes=false -Dcassandra.skip_sync=true" \
        cassandra_nodes start >"$cassandra_log" 2>&1 &
    cassandra_start=$!
fi

# Lint, import order, types and import contracts (pyproject.toml): a failure stops here.
echo "ruff check . && mypy && lint-imports ..."
ruff check .
mypy
lint-imports  # the import contracts of pyproject.toml

if [ -n "$cassandra_start" ]; then
    started=0; wait "$cassandra_start" || started=$?
    cat "$cassandra_log"; rm -f "$cassandra_log"
    [ "$started" = 0 ] || { echo "Cassandra did not start (exit $started)" >&2; exit 1; }
    export L1DB_TEST_CASSANDRA_HOSTS=127.0.0.1
fi
# Three pytest-xdist workers on two cores: a worker whose test waits (a node starting, a
# server restarting) leaves the cores to the other two (tests/conftest.py says which tests
# may not run side by side and how they are kept apart);
# the 20 slowest tests listed at the end. Later arguments win: `bash scripts/test.sh -n 0`
# runs serially.
exec python -m pytest -n "${L1DB_TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder --durations=20 "$@"
