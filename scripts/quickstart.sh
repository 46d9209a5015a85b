#!/usr/bin/env bash
# The main job, end to end, on SQLite, at reduced density so that it takes a
# couple of minutes: install the toolkit into .venv, make a source catalogue,
# create the L1 schema, run the AP loop, turn the timing log into a CSV, plots and
# one HTML report.
# Everything it writes goes to run/quickstart/ (override with L1DB_RUN_DIR);
# VISITS (default 40) sets the number of visits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The notebook extra: JupyterLab, to open notebooks/timing_analysis.ipynb on the results.
. "$ROOT/scripts/_venv.sh" notebook
RUN="${L1DB_RUN_DIR:-$ROOT/run/quickstart}"
VISITS="${VISITS:-40}"
mkdir -p "$RUN"
cd "$RUN"
rm -f timing.jsonl timing.csv timing.csv.provenance.json report.html
CFG="$RUN/l1db.cfg"
cat > "$CFG" <<CFGEOF
[database]
url = sqlite:///$RUN/l1db.sqlite3

[l1db]
dia_object_index = last_object_table

[ap_proto]
# A 20 x 20 degree patch: fields overlap within a few visits, so the history
# reads have something to read even in a short run.
pointing_area = 0,20,-30,-10
false_per_visit = 1000
transients_per_visit = 20
seed = 1
row_count_every = 10
CFGEOF

echo "== gen_sources (2,000 sources per field, a fifth of full density)"
gen_sources -o sources.npy --per-visit 2000 --seed 1 --force
echo "== create_l1_schema"
create_l1_schema -c "$CFG" --drop
echo "== ap_proto ($VISITS visits)"
ap_proto -c "$CFG" -n "$VISITS" -l timing.jsonl sources.npy
echo "== log2csv"
log2csv timing.jsonl -o timing.csv
echo "== plot_timing"
plot_timing timing.csv -o plots
echo "== l1db_report"
l1db_report timing.csv -o report.html
echo
echo "done. In $RUN:"
echo "  l1db.sqlite3   the L1 database    timing.jsonl  the timing log"
echo "  timing.csv     one row per visit  plots/*.png   the timing plots"
echo "  report.html    the run on one page (opens offline in any browser)"
echo "Analysis notebook (it reads run/quickstart/timing.csv): .venv/bin/jupyter lab notebooks/timing_analysis.ipynb"
echo "Report: $RUN/report.html"
