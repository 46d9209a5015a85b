#!/usr/bin/env bash
# The main job, end to end, on SQLite: install the toolkit into .venv, then
# create the L1 schema in run/quickstart/l1db.sqlite3.
# Everything it writes goes to run/quickstart/ (override with L1DB_RUN_DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/_venv.sh"
RUN="${L1DB_RUN_DIR:-$ROOT/run/quickstart}"
mkdir -p "$RUN"
cd "$RUN"
CFG="$RUN/l1db.cfg"
cat > "$CFG" <<CFGEOF
[database]
url = sqlite:///$RUN/l1db.sqlite3

[l1db]
dia_object_index = last_object_table
CFGEOF

echo "== create_l1_schema"
create_l1_schema -c "$CFG" --drop
echo
echo "done: the L1 schema is in $RUN/l1db.sqlite3"
