"""Open-loop runs (``ap_proto --cadence``): the release clock, the visits in flight, the verdict.

A closed-loop run starts a visit when the one before has ended, so a database
that cannot keep up with the survey only looks slow: the queue that builds up
in production, and the latency an alert sees, are never measured (coordinated
omission). An open-loop run releases visit k of the run at wall-clock time
start + k x ``cadence`` whatever happened before; its tiles queue for the same
pool of workers as the tiles of the visits still in flight. Each visit's
latency is measured from its release, not from when a worker got to it.

Nights: at the first visit of a new night (or every ``daily_job_every``
visits) the driver waits for the visits in flight, runs the daily job, and
restarts the clock there, as the survey has a day between two nights: the
daily job's time does not count against the night's cadence.

This module holds what is open-loop only and needs no database: the clock
(`ReleaseClock`), a released visit's bookkeeping (`OpenVisit`) and the
verdict of a run (`Verdict`, from the ``latency`` records of
`l1db.timing_log`); the driver is `dia_sim.ap_loop.ApLoop`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # annotations only: log2csv's verdicts need neither the run's options nor the simulation
    from .visit_plan import TileResult, VisitPlan

__all__ = ["ReleaseClock", "OpenVisit", "Verdict", "verdict", "in_flight_steps", "table_latencies", "cadence_of",
           "run_verdicts"]


class ReleaseClock:
    """When visit k of an open-loop run is released: start + k x ``cadence`` (Unix seconds).

    Parameters
    ----------
    cadence : `float`
        Seconds between two releases.
    start : `float`
        Release time of visit 0 of the run.
    """

    def __init__(self, cadence: float, start: float) -> None:
        self.cadence = cadence
        self.start = start

    def due(self, k: int) -> float:
        """Release time of visit ``k`` of the run."""
        return self.start + k * self.cadence

    def restart(self, k: int, now: float) -> None:
        """Release visit ``k`` at ``now`` and the next ones a cadence apart (after a daily job)."""
        self.start = now - k * self.cadence


@dataclasses.dataclass
class OpenVisit:
    """A released visit whose tiles are not all back yet."""

    plan: VisitPlan
    #: Release time (Unix seconds).
    released: float
    #: Tiles not back yet.
    waiting: set[int]
    results: list[TileResult] = dataclasses.field(default_factory=list)
    #: When its first tile began (Unix seconds; infinite until one did).
    began: float = math.inf
    #: When its last tile's store was acknowledged (Unix seconds).
    stored: float = 0.0
    #: Whether a tile failed (the visit is then never complete).
    failed: bool = False


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether an open-loop run kept up with its cadence, and its visits' latency.

    ``kept_up``: the run was not stopped by the in-flight bound, and the
    queue did not grow: the median latency of the last quarter of its visits
    exceeds the first quarter's by less than one cadence.
    """

    cadence: float
    visits: int
    kept_up: bool
    #: Latency from release (seconds): median, 95th and 99th percentiles, maximum.
    median: float
    p95: float
    p99: float
    max: float
    #: Most visits in flight at once (released, not yet stored).
    max_in_flight: int
    #: Queue wait of all visits (release to first tile begun), seconds.
    queue_wait: float
    #: The visit whose release found the in-flight bound reached, if one did.
    behind_visit: int | None = None

    def line(self) -> str:
        """The one-line verdict ap_proto prints."""
        if self.visits == 0:
            head = f"open loop at {self.cadence:g} s: no visit stored"
        else:
            head = (f"open loop at {self.cadence:g} s: {'kept up' if self.kept_up else 'did NOT keep up'} "
                    f"({self.visits} visits); latency median {self.median:.2f} s, p95 {self.p95:.2f} s, "
                    f"p99 {self.p99:.2f} s, max {self.max:.2f} s; at most {self.max_in_flight} visit(s) in flight; "
                    f"queue wait {self.queue_wait:.1f} s in all")
        if self.behind_visit is not None:
            head += f"; fell behind at visit {self.behind_visit}"
        return head

    def as_dict(self) -> dict[str, Any]:
        """The verdict as a JSON-able mapping."""
        return dataclasses.asdict(self)


def in_flight_steps(latencies: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Visits in flight against time: the times (Unix seconds) at which the count changes, and the count after.

    ``latencies`` is `l1db.timing_log.ParsedLog.latencies` (one run's, or
    several); a visit is in flight from its release to its last store.
    """
    released = latencies["released"].to_numpy(dtype="float64")
    stored = latencies["stored"].to_numpy(dtype="float64")
    times = np.concatenate([released, stored])
    steps = np.concatenate([np.ones(len(released), dtype=np.int64), -np.ones(len(stored), dtype=np.int64)])
    # At one instant an end comes before a start: a visit stored as the next is released is not overlapped.
    order = np.lexsort((steps, times))
    return times[order], np.cumsum(steps[order])


def verdict(latencies: pd.DataFrame, cadence: float, behind: Sequence[int] = ()) -> Verdict:
    """The `Verdict` of one open-loop run from its latency records.

    Parameters
    ----------
    latencies : `pandas.DataFrame`
        The run's rows of `l1db.timing_log.ParsedLog.latencies`.
    cadence : `float`
        The run's cadence, seconds.
    behind : sequence of `int`
        The visits of the run's ``behind`` records (at most one).
    """
    behind_visit = int(behind[0]) if len(behind) else None
    if latencies.empty:
        return Verdict(cadence, 0, behind_visit is None, math.nan, math.nan, math.nan, math.nan, 0, 0.0, behind_visit)
    ordered = latencies.sort_values("released")
    latency = ordered["latency"].to_numpy(dtype="float64")
    quarter = max(len(latency) // 4, 1)
    growing = np.median(latency[-quarter:]) - np.median(latency[:quarter]) >= cadence
    median, p95, p99 = np.percentile(latency, [50, 95, 99])
    _, counts = in_flight_steps(ordered)
    return Verdict(
        cadence=cadence, visits=len(latency), kept_up=behind_visit is None and not growing,
        median=float(median), p95=float(p95), p99=float(p99), max=float(latency.max()),
        max_in_flight=int(counts.max()), queue_wait=float(ordered["queue_wait"].sum()), behind_visit=behind_visit,
    )


def table_latencies(table: pd.DataFrame) -> pd.DataFrame:
    """The latency records behind a per-visit table (log2csv's ``released``, ``queue_wait``, ``latency``).

    Rows without a latency (closed-loop runs, visits not completed) are left
    out; columns as `l1db.timing_log.ParsedLog.latencies`.
    """
    if "latency" not in table.columns:
        return pd.DataFrame(columns=["run", "visit", "released", "began", "stored", "queue_wait", "latency"])
    rows = table[table["latency"].notna()]
    released = rows["released"].to_numpy(dtype="float64")
    return pd.DataFrame({
        "run": rows["run"].astype("str").to_numpy(), "visit": rows["visit"].to_numpy(dtype="int64"),
        "released": released, "began": released + rows["queue_wait"].to_numpy(dtype="float64"),
        "stored": released + rows["latency"].to_numpy(dtype="float64"),
        "queue_wait": rows["queue_wait"].to_numpy(dtype="float64"),
        "latency": rows["latency"].to_numpy(dtype="float64"),
    })


def cadence_of(provenance: Mapping[str, Any]) -> float:
    """The cadence of a run from its provenance record (0: closed loop, or a run from before open loops)."""
    config = provenance.get("config")
    ap_proto = config.get("ap_proto") if isinstance(config, Mapping) else None
    cadence = ap_proto.get("cadence") if isinstance(ap_proto, Mapping) else None
    return float(cadence) if isinstance(cadence, (int, float)) and not isinstance(cadence, bool) else 0.0


def run_verdicts(latencies: pd.DataFrame, provenance: Sequence[Mapping[str, Any]],
                 behind: Sequence[Mapping[str, Any]] = ()) -> dict[str, Verdict]:
    """The `Verdict` of every open-loop run among ``provenance`` (by run id, in their order).

    ``latencies`` as `l1db.timing_log.ParsedLog.latencies` (or `table_latencies`),
    ``behind`` the ``behind`` records.
    """
    verdicts = {}
    for record in provenance:
        cadence = cadence_of(record)
        run = str(record.get("run", ""))
        if cadence <= 0 or not run:
            continue
        mine = latencies[latencies["run"] == run] if len(latencies) else latencies
        verdicts[run] = verdict(mine, cadence, [int(b["visit"]) for b in behind if b.get("run") == run])
    return verdicts
