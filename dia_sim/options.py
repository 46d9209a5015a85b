"""The ``[ap_proto]`` options, declared once: simulation (`SimConfig`) and run (`RunSettings`).

The ``[ap_proto]`` section of a config file and the matching ``ap_proto``
flags are `ApProtoSection`: every option of `RunSettings` and `SimConfig`
under its key (``match_radius`` is ``SimConfig.match_radius_arcsec``). A run's
options are `RunOptions`: the run settings, the command line's own
(``num_visits``, ``explain``, ``no_update``) and ``sim``, a `SimConfig`.
Bounds, defaults and documentation are those of the fields below (see
`l1db.config` for adding an option); `load_config` validates the section
with the rest of the file, so a bad value names the file, section and key.

`readme_table` is the option table of docs/configuration.md (every section,
l1db's and ``[ap_proto]``) and `config_file_text` the option comments of the
example configs, from the declarations; ``python -m dia_sim.cli.readme_tables
docs/*.md cfg/*.cfg`` writes them (tests check both are current).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, model_validator

from l1db.config import L1DB_SECTIONS, ConfigError, L1dbConfig, load_config
from l1db.config_model import Section, comment, markdown_table, option, option_error, option_fields, validate_section
from l1db.constants import mjd_tai_time, to_mjd_tai

from .compression import Cadence, derive_cadence
from .ids import MAX_VISIT
from .pointing import PointingArea, centre_area_deg2, check_area_in_sky, parse_pointing_area
from .schedule import VisitSchedule, parse_time
from .survey import FOV_DEG, SKY, Sky
from .tiling import DIVIDE_ALLOWED, parse_divide, tiling

__all__ = ["MAX_IN_FLIGHT", "SimConfig", "RunSettings", "ApProtoSection", "RunOptions", "SECTIONS", "load_ap_config",
           "run_options", "readme_table", "config_file_text"]


class SimConfig(Section):
    """Parameters of the DIA simulation (defaults: the original prototype's)."""

    detection_fraction: float = option(
        1.0, "probability that a catalogue source in the field is detected", ge=0.0, le=1.0)
    # At most 10 million: a visit's rows must fit in memory (and numpy's Poisson draw refuses a huge mean).
    false_per_visit: float = option(5050.0, "mean number of noise DiaSources per field", ge=0.0, le=1e7)
    transients_per_visit: float = option(100.0, "mean number of new transients per field", ge=0.0, le=1e7)
    scatter_arcsec: float = option(
        0.1, "Gaussian positional scatter (per axis) of detected catalogue sources, arcsec", ge=0.0, internal=True)
    match_radius_arcsec: float = option(1.0, "association radius, arcsec", gt=0.0, alias="match_radius")
    forced_cutoff_days: float = option(
        30.0, "no forced photometry for objects not detected for longer than this, days", ge=0.0)


#: Largest ``max_in_flight``: a resumed run looks this many visits back for visits left incomplete
#: (`dia_sim.ap_loop.ApLoop.first_visit`). (The Cassandra backend's recovery of tiles stored but not
#: applied reads every L1dbVisit row, in pages of ``l1db.cassandra.writes.RECOVERY_ROWS``: no bound there.)
MAX_IN_FLIGHT = 25


def _mjd(value: Any) -> float:
    """MJD (TAI) of a start time: ISO 8601 text in TAI, an astropy Time, or an MJD (a validated section's)."""
    # An MJD, not a Time: the options go to every worker of the pool, which then needs no astropy.
    return to_mjd_tai(parse_time(value) if isinstance(value, str) else value)


def _isot(mjd: float) -> str:
    return str(mjd_tai_time(mjd).isot)


def _area(value: Any) -> Any:
    if isinstance(value, str):
        return parse_pointing_area(value) if value.strip() else None
    return value


def _scheduler_address(address: str) -> str:
    """Refuse what is not a Dask scheduler address, ``tcp://HOST:PORT`` (or ``tls://``); empty is no scheduler."""
    if not address:
        return address
    scheme, sep, rest = address.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or scheme not in ("tcp", "tls") or not colon or not host or not port.isdigit() \
            or not 0 < int(port) < 65536:
        raise ValueError(f"bad scheduler address {address!r}; allowed: tcp://HOST:PORT (as dask scheduler prints)")
    return address


class RunSettings(Section):
    """The run's settings in ``[ap_proto]``: pace, tiling, pointings, start, upkeep and retries."""

    interval: float = option(45.0, "seconds between visits (night-time only)", ge=0.001, short="-i")
    days_between_nights: int = option(
        1, "days from one observing night to the next (1 = every night); derived when observations_per_year "
        "is set", ge=1, le=3650)
    observations_per_year: float = option(
        0.0, "time compression: observe each point of the pointing area about K times per simulated year; the "
        "visits a night, the interval and the days between nights are derived (printed, and kept in the "
        "provenance record); 0 = no compression (interval, every night)", ge=0.0)
    divide: Annotated[int | Literal["camera"], BeforeValidator(parse_divide)] = option(
        1, "split the field into N x N tiles, or into the camera's 189 detectors (camera), run concurrently by "
        "the worker pool (`workers`)", metavar="N|camera", allowed=DIVIDE_ALLOWED)
    fov: float = option(FOV_DEG, "field of view diameter, degrees", ge=0.01, le=90.0)
    sky: Sky = option(SKY, "where pointings fall: south (Dec <= 0) or full sky")
    pointing_area: Annotated[PointingArea | None, BeforeValidator(_area)] = option(
        "", "confine pointings to a patch so fields overlap within tens of visits (RA_MIN > RA_MAX wraps "
        "through RA 0: 350,10 is the 20 degrees around it); empty = the whole of `sky`",
        metavar="RA_MIN,RA_MAX,DEC_MIN,DEC_MAX",
        allowed="RA_MIN,RA_MAX,DEC_MIN,DEC_MAX (degrees, RA 0-360, Dec -90-90), or empty")
    seed: int = option(1, "random seed of pointings and simulation (a run is reproducible)", ge=0)
    start_time: Annotated[float, BeforeValidator(_mjd), PlainSerializer(_isot, when_used="json")] = option(
        "2026-01-01T20:00:00",
        "time of the first visit of a new database; later runs resume after the last visit",
        metavar="ISO_TAI", allowed="an ISO 8601 time in TAI")
    start_visit_id: int = option(1, "visit ID of the first visit of a new database", ge=0, le=MAX_VISIT - 1)
    row_count_every: int = option(
        100, "log the row count of every table every N visits, the server's estimates (0 = never)", ge=0)
    daily_job_every: int = option(
        0, "run dailyJob() (the nightly-table merge) every N visits; 0 = between nights, as the survey would", ge=0)
    retry_attempts: int = option(
        5, "on a connection-level database error (a server restart, a failover, a node gone) reconnect and "
        "retry the visit's tile up to N times, then stop; 0 = stop at the first failure", ge=0)
    retry_wait: float = option(
        2.0, "seconds before the first retry, doubled before each next one (defaults: 2+4+8+16+32 = 62 s "
        "in all); raised to make the retries outlast twice a local Cassandra node's last start", ge=0.0)
    workers: int = option(
        0, "worker processes running the tiles, each keeping its catalogue and connection for every tile it gets "
        "(0 = the machine's cores; never more than a visit's tiles, or in an open loop the tiles of `max_in_flight` "
        "visits); with `scheduler`, the Dask workers to "
        "wait for before starting (0 = at least one)", ge=0)
    # -- open loop (dia_sim.open_loop) --
    cadence: float = option(
        0.0, "open loop: release visit v at start + v x SECONDS of wall-clock time, whether or not the visits "
        "before it are done (they overlap when the database falls behind); each visit's latency from its release "
        "is logged and a verdict printed at the end; 0 = closed loop (each visit starts when the one before has "
        "ended)", ge=0.0, metavar="SECONDS")
    max_in_flight: int = option(
        10, "open loop: visits released and not yet stored at most; a release that would exceed it stops the run "
        "(after the visits in flight are stored and logged): the database fell behind", ge=1, le=MAX_IN_FLIGHT)
    scheduler: Annotated[str, AfterValidator(_scheduler_address)] = option(
        "", "address of a Dask scheduler, tcp://HOST:PORT, whose workers (dask worker) run the tiles; "
        "empty = a local pool of `workers` processes", metavar="tcp://HOST:PORT",
        allowed="tcp://HOST:PORT (or tls://), or empty")

    @model_validator(mode="after")
    def _check_area_in_sky(self) -> RunSettings:
        if self.pointing_area is not None:
            try:
                check_area_in_sky(self.pointing_area, self.sky)
            except ValueError as exc:
                raise option_error("pointing_area", str(exc)) from None
        return self


class ApProtoSection(SimConfig, RunSettings):
    """The ``[ap_proto]`` section and the ``ap_proto`` flags: every option of `RunSettings` and `SimConfig`."""


class RunOptions(RunSettings):
    """Options of one ap_proto run (see ``ap_proto --help`` for each)."""

    # The command line's own options (see ap_proto --help), and the simulation's.
    num_visits: int = option(ge=0, internal=True)
    explain: bool = option(False, internal=True)
    no_update: bool = option(False, internal=True)
    sim: SimConfig = option(SimConfig(), internal=True)
    #: The time-compressed cadence that ``interval`` and ``days_between_nights`` were derived from, if any.
    compression: Cadence | None = option(None, internal=True)

    def as_dict(self) -> dict[str, Any]:
        """Effective options, for the provenance record (JSON values; the compression is a record of its own)."""
        return self.model_dump(mode="json", exclude={"compression"})

    @property
    def n_tiles(self) -> int:
        """Number of tiles of a visit."""
        return tiling(self.divide).n_tiles

    def schedule(self, first_visit: int, start_mjd: float) -> VisitSchedule:
        """The visit schedule of these options from ``first_visit`` at ``start_mjd``."""
        return VisitSchedule(first_visit, start_mjd, self.interval, night_step=self.days_between_nights)


#: The sections dia_sim owns, for ``load_config(path, sections=SECTIONS)``.
SECTIONS: dict[str, type[Section]] = {"ap_proto": ApProtoSection}


def load_ap_config(path: str | Path) -> L1dbConfig:
    """`l1db.config.load_config` with the ``[ap_proto]`` section validated too."""
    return load_config(path, sections=SECTIONS)


def run_options(section: ApProtoSection, where: Callable[[str | None], str] = str, **cli: Any) -> RunOptions:
    """The `RunOptions` of a validated ``[ap_proto]`` section and the command line's own options.

    Raises
    ------
    l1db.config.ConfigError
        A bad value of the command line's own options (``num_visits``), named by ``where``.
    """
    values = section.model_dump()
    sim = SimConfig(**{name: values.pop(name) for name in SimConfig.model_fields})
    options = validate_section(RunOptions, {**values, "sim": sim, **cli}, where)
    if not options.observations_per_year:
        return options
    try:
        cadence = derive_cadence(options.observations_per_year,
                                 centre_area_deg2(options.sky, options.pointing_area, options.fov), fov_deg=options.fov)
    except ValueError as exc:
        raise ConfigError(f"{where('observations_per_year')}: {exc}") from None
    # The derived cadence replaces the interval and the days between nights.
    return options.model_copy(update={"interval": cadence.interval,
                                      "days_between_nights": cadence.days_between_nights, "compression": cadence})


def _all_sections() -> list[tuple[str, type[Section]]]:
    return [*L1DB_SECTIONS.items(), *SECTIONS.items()]


def readme_table() -> str:
    """The option table of docs/configuration.md: every option of l1db's sections and dia_sim's."""
    return markdown_table(_all_sections())


def config_file_text(text: str) -> str:
    """A config file's ``text`` with the comment above each option's line written from its declaration.

    The example configs of ``cfg/`` show every option of their backend with
    its documentation; other lines (the header, ``url``'s comment) are kept.
    """
    fields = {(section, key): field for section, model in _all_sections()
              for key, field in option_fields(model).items() if not field.is_required()}
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[(\w+)\]\s*", line)
        section = header.group(1) if header else section
        key = re.match(r"(\w+)\s*=", line)
        field = fields.get((section, key.group(1))) if key else None
        if field is not None:
            while out and out[-1].startswith("#"):
                out.pop()
            out.extend(comment(field))
        out.append(line)
    return "\n".join(out) + "\n"
