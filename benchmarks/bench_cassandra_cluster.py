"""Benchmark: the AP loop on 1 Cassandra node vs a 3-node cluster, and what losing a node costs.

Three ap_proto runs of the same seed, catalogue and visits, each in a fresh
keyspace, on nodes this script starts with the project's launcher
(`l1db.cassandra.server`, as ``cassandra_nodes start``) in run dirs of its
own and on loopback addresses of its own (never the shared node on
127.0.0.1), and stops at the end, whatever happened:

1. ``3 nodes``: three nodes, replication factor 3, QUORUM reads and writes;
2. ``3 nodes, node lost``: as 1, but node 3 is killed (``kill -9``) once
   ``--kill-after`` visits are logged, and started again
   (``cassandra_nodes start --node 3``) once ``--restart-after`` visits are;
   with ``--losses N``, N times in the run, each loss ``--loss-every`` visits
   after the one before; then the database is checked against the run's
   timing log (`_faults.check_database`: visits contiguous, no key twice,
   rows per visit equal to the log);
3. ``1 node``: one node (once the three are stopped), replication factor 1.

Prints, as Markdown: the median per-visit time of each operation of each run
(over the visits after ``--skip`` warm-up visits), and for run 2 the median
over the visits before the loss, while the node was down, while it was
restarting, and after it rejoined (the first loss), plus every visit around the
loss with its failed attempts and the time they cost, and with several losses
a row per loss. Writes each run's per-visit CSV into
``--out``. The nodes share the machine with the client: on a small machine
the figures say what replication costs in CPU, not what a real cluster does.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_cassandra_cluster.py --visits 24 --per-visit 2000 \\
        --kill-after 8 --restart-after 12 --out /tmp/bench-cluster
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from _common import add_results_option, keep_results
from _faults import check_database, kill_node

from dia_sim.catalog import generate_catalog
from dia_sim.log2csv import logs_to_table
from dia_sim.survey import SKY
from l1db.cassandra import server
from l1db.cli.create_l1_schema import main as create_l1_schema

REPO = Path(__file__).resolve().parents[1]
OPS = ("visit", "sum_select", "obj_select", "src_select", "fsrc_select", "store")


def write_config(path: Path, hosts: list[str], keyspace: str, replication: int, args: argparse.Namespace) -> Path:
    path.write_text(
        f"[database]\nurl = cassandra://{','.join(hosts)}/{keyspace}\n\n"
        f"[cassandra]\nreplication_factor = {replication}\nread_consistency = QUORUM\nwrite_consistency = QUORUM\n\n"
        f"[ap_proto]\npointing_area = {args.patch}\nseed = {args.seed}\nrow_count_every = 0\n"
        f"false_per_visit = {args.per_visit / 2:g}\nretry_attempts = 8\nretry_wait = 1\n"
    )
    return path


def visits_logged(log: Path) -> int:
    return log.read_text().count('"op": "visit"') if log.exists() else 0


def run_ap_proto(config: Path, catalog: Path, log: Path, visits: int,
                 events: list[tuple[int, str, Callable[[], None]]] | None = None) -> dict[str, int]:
    """Run ap_proto; call each event's action once its number of visits is logged.

    Returns the number of visits logged when each event began (``NAME_at``) and ended (``NAME_done``).
    """
    command = [sys.executable, str(REPO / "bin" / "ap_proto"), "-c", str(config), "-n", str(visits), "-l", str(log),
               "--no-progress", str(catalog)]
    marks: dict[str, int] = {}
    with open(log.with_suffix(".stderr"), "w") as err:
        proc = subprocess.Popen(command, stderr=err)
    try:
        for after, name, action in events or []:
            while visits_logged(log) < after and proc.poll() is None:
                time.sleep(0.2)
            marks[f"{name}_at"] = visits_logged(log)
            action()
            marks[f"{name}_done"] = visits_logged(log)
        if proc.wait() != 0:
            raise RuntimeError(f"ap_proto failed (exit {proc.returncode}); see {log.with_suffix('.stderr')}")
    finally:
        if proc.poll() is None:
            proc.kill()
    return marks


def medians(table: pd.DataFrame) -> dict[str, float]:
    """Median wall time of each operation, and of ``cost``: the visit plus what its failed attempts cost."""
    out = {op: float(table[f"{op}_real"].median()) for op in OPS}
    out["cost"] = float((table["visit_real"] + table["lost_real"].fillna(0)).median())
    return out


def run_stem(name: str) -> str:
    """A run's file name in ``--out`` without suffix: ``3 nodes, node lost`` -> ``3_nodes_node_lost``."""
    return name.replace(" ", "_").replace(",", "")


def loss_marks(k: int) -> tuple[str, str]:
    """Names of the kill and restart events of loss ``k`` (from 0; the first's are plain) in `run_ap_proto`'s marks."""
    suffix = "" if k == 0 else str(k + 1)
    return f"kill{suffix}", f"restart{suffix}"


def run_on_cluster(name: str, nodes: int, base: str, catalog: Path, args: argparse.Namespace,
                   lose_node: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    run_dir = args.run_dirs[nodes]
    hosts = server.ensure_running(run_dir, nodes, heap=args.heap, base_address=base)
    keyspace = f"bench_{uuid.uuid4().hex[:8]}"
    config = write_config(args.out / f"{run_stem(name)}.cfg", hosts, keyspace,
                          nodes, args)
    if create_l1_schema(["-c", str(config)]) != 0:
        raise RuntimeError(f"create_l1_schema failed for {name}")
    log = config.with_suffix(".jsonl")
    events = []
    if lose_node:
        def kill() -> None:
            # Gone when this returns: a restart may follow at once (its ports free).
            pid = kill_node(run_dir, 3)
            print(f"  node 3 killed (pid {pid}) at {time.strftime('%H:%M:%S')}", file=sys.stderr)

        def restart() -> None:
            server.start(run_dir, node=3, report=lambda line: print("  " + line, file=sys.stderr))

        for k in range(args.losses):
            kill_mark, restart_mark = loss_marks(k)
            events += [(args.kill_after + k * args.loss_every, kill_mark, kill),
                       (args.restart_after + k * args.loss_every, restart_mark, restart)]
    print(f"{name}: {args.visits} visits on {', '.join(hosts)} ...", file=sys.stderr)
    marks = run_ap_proto(config, catalog, log, args.visits, events)
    if lose_node:
        check = check_database(config, [log])
        marks["check_visits"] = check.visits
        print(f"  database against the log: {check.visits} visits stored, "
              + ("every check passed" if not check.problems else "PROBLEMS: " + "; ".join(check.problems))
              + (f"; stored, unlogged: {check.unlogged}" if check.unlogged else ""), file=sys.stderr)
        if check.problems:
            raise RuntimeError(f"{name}: the database does not equal its timing log: {check.problems}")
    table, _ = logs_to_table([log])
    table.to_csv(config.with_suffix(".csv"), index=False)
    return table, marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=24)
    parser.add_argument("--per-visit", type=int, default=2000, help="catalogue sources per field (2000)")
    parser.add_argument("--kill-after", type=int, default=8, help="kill node 3 once this many visits are logged")
    parser.add_argument("--restart-after", type=int, default=12, help="start node 3 again after this many")
    parser.add_argument("--losses", type=int, default=1, help="times node 3 is lost in run 2 (default 1)")
    parser.add_argument("--loss-every", type=int, default=10,
                        help="visits from one loss's kill (and restart) to the next's (default 10)")
    parser.add_argument("--skip", type=int, default=2, help="warm-up visits left out of the medians")
    parser.add_argument("--patch", default="0,10,-25,-15", help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--heap", default="512M", help="heap of each node")
    parser.add_argument("--single-address", default="127.0.0.31", help="address of the single node")
    parser.add_argument("--cluster-address", default="127.0.0.41", help="address of the cluster's node 1")
    parser.add_argument("--cluster-run-dir", type=Path, default=None,
                        help="run dir of the 3 nodes (default OUT/run-3node; a running cluster there is used)")
    parser.add_argument("--out", type=Path, default=Path("run/bench-cluster"))
    add_results_option(parser)
    args = parser.parse_args()
    if args.losses < 1 or args.loss_every < 1 or args.restart_after <= args.kill_after:
        parser.error("--losses and --loss-every must be at least 1, --restart-after above --kill-after")
    args.out = args.out.resolve()
    args.run_dirs = {1: args.out / "run-1node", 3: (args.cluster_run_dir or args.out / "run-3node").resolve()}
    args.out.mkdir(parents=True, exist_ok=True)
    catalog = args.out / f"sources-{args.per_visit}.npy"
    if not catalog.exists():
        generate_catalog(catalog, per_visit=args.per_visit, sky=SKY, seed=args.seed)
    try:
        return _runs(args, catalog)
    except (server.CassandraError, RuntimeError) as exc:
        print(f"bench_cassandra_cluster: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for run_dir in args.run_dirs.values():
            if run_dir.exists():
                server.stop(run_dir, timeout=30)


def _runs(args: argparse.Namespace, catalog: Path) -> int:
    """The three runs, then their tables (`main` stops the nodes afterwards, whatever happened)."""
    load = [os.getloadavg()[0]]
    results: dict[str, pd.DataFrame] = {}
    # One set of nodes at a time: the others would share the CPUs.
    results["3 nodes"], _ = run_on_cluster("3 nodes", 3, args.cluster_address, catalog, args)
    load.append(os.getloadavg()[0])
    results["3 nodes, node lost"], marks = run_on_cluster("3 nodes, node lost", 3, args.cluster_address,
                                                          catalog, args, lose_node=True)
    load.append(os.getloadavg()[0])
    server.stop(args.run_dirs[3], timeout=30)
    results["1 node"], _ = run_on_cluster("1 node", 1, args.single_address, catalog, args)
    load.append(os.getloadavg()[0])

    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} UTC; {os.cpu_count()} cpus; 1-min load at the end of each run: "
          + ", ".join(f"{x:.1f}" for x in load) + f"; {args.visits} visits, {args.per_visit} sources/field, "
          f"median over visits > {args.skip}\n")
    print("| run | " + " | ".join(f"{op} s" for op in OPS) + " | failed attempts |")
    print("|---|" + "---:|" * (len(OPS) + 1))
    for name, table in results.items():
        late = table[table["visit"] > table["visit"].min() + args.skip - 1]
        m = medians(late)
        print(f"| {name} | " + " | ".join(f"{m[op]:.2f}" for op in OPS) + f" | {int(table['failures'].sum())} |")
    ratio = medians(results["3 nodes"].iloc[args.skip:])["visit"] / medians(results["1 node"].iloc[args.skip:])["visit"]
    print(f"\n3 nodes / 1 node, median visit: {ratio:.2f}x")

    lost = results["3 nodes, node lost"].sort_values("visit").reset_index(drop=True)
    first = int(lost["visit"].min())
    # Visit k (1-based within the run) ran while node 3 was ...
    phases = {
        "before the loss": (args.skip + 1, marks["kill_at"]),
        "node 3 down": (marks["kill_at"] + 1, marks["restart_at"]),
        "node 3 restarting": (marks["restart_at"] + 1, marks["restart_done"] + 1),
        "after it rejoined": (marks["restart_done"] + 2, args.visits),
    }
    print(f"\nnode lost: killed after visit {marks['kill_at']}, restart begun after visit {marks['restart_at']}, "
          f"node up again during visit {marks['restart_done'] + 1}\n")
    print("| phase | visits | median visit + time lost s | median visit s | median sum_select s | median store s "
          "| failed attempts |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for phase, (lo, hi) in phases.items():
        part = lost[(lost["visit"] - first + 1 >= lo) & (lost["visit"] - first + 1 <= hi)]
        if part.empty:
            continue
        m = medians(part)
        print(f"| {phase} | {len(part)} | {m['cost']:.2f} | {m['visit']:.2f} | {m['sum_select']:.2f} | "
              f"{m['store']:.2f} | "
              f"{int(part['failures'].sum())} |")
    print("\n| visit | visit s | sum_select s | store s | failed attempts | time lost s |")
    print("|---:|---:|---:|---:|---:|---:|")
    around = lost[(lost["visit"] - first + 1 >= marks["kill_at"] - 1)
                  & (lost["visit"] - first + 1 <= marks["restart_done"] + 3)]
    for _, row in around.iterrows():
        print(f"| {int(row['visit'])} | {row['visit_real']:.2f} | {row['sum_select_real']:.2f} | "
              f"{row['store_real']:.2f} | {int(row['failures'])} | {row['lost_real']:.2f} |")
    if args.losses > 1:
        print(f"\n{args.losses} losses of node 3; database against the log: {marks['check_visits']} visits, "
              "every check passed\n")
        print("| loss | killed after visit | restart begun after visit | node up during visit | slowest visit "
              "from the kill to the node up, s | failed attempts | time lost s |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for k in range(args.losses):
            kill_mark, restart_mark = loss_marks(k)
            kill_at, done = marks[f"{kill_mark}_at"], marks[f"{restart_mark}_done"]
            part = lost[(lost["visit"] - first + 1 > kill_at) & (lost["visit"] - first + 1 <= done + 1)]
            print(f"| {k + 1} | {kill_at} | {marks[f'{restart_mark}_at']} | {done + 1} | "
                  f"{part['visit_real'].max():.2f} | {int(part['failures'].sum())} | "
                  f"{part['lost_real'].fillna(0).sum():.2f} |")
    if args.results is not None:
        logs = {run_stem(name): args.out / f"{run_stem(name)}.jsonl" for name in results}
        keep_results(logs, args.results, f"Cassandra: 1 node against 3 nodes, {args.visits} visits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
