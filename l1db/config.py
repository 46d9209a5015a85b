"""Configuration files: INI sections ``[database]``, ``[l1db]``, ``[cassandra]`` and ``[ap_proto]``.

Every option is declared once in `OPTIONS` with its type, default, allowed
values and a one-line description; the loader validates a file against that
table and the README's reference table is written from it. A file may leave
out any option (its default applies) and any section except ``[database]``.

Example::

    [database]
    url = sqlite:///l1db.sqlite3

    [l1db]
    dia_object_index = last_object_table
    pixelization = htm
"""

from __future__ import annotations

import configparser
import math
import re
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy

__all__ = [
    "ConfigError",
    "Option",
    "OPTIONS",
    "L1dbConfig",
    "load_config",
    "default_config_path",
    "safe_url",
    "normalize_url",
    "CassandraURL",
    "parse_cassandra_url",
    "CONSISTENCY_LEVELS",
    "URL_SCHEMES",
    "check_driver",
    "check_time_partitions",
]


class ConfigError(ValueError):
    """A configuration file that cannot be used, with a message naming where."""


@dataclasses.dataclass(frozen=True)
class Option:
    """Declaration of one configuration option."""

    section: str
    name: str
    type: type
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: The backend the option means something for (``sql`` or ``cassandra``);
    #: `None` for every backend. Setting it for another backend is an error.
    backend: str | None = None

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.choices is not None:
            return " | ".join(str(c) for c in self.choices)
        kind = {int: "an integer", float: "a number", str: "a string"}[self.type]
        if self.minimum is not None and self.maximum is not None:
            kind += f" from {self.minimum:g} to {self.maximum:g}"
        elif self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        elif self.maximum is not None:
            kind += f" <= {self.maximum:g}"
        return kind

    def parse(self, text: str, where: str) -> Any:
        """Convert ``text`` to the option's value, or raise `ConfigError`."""
        text = text.strip()
        text = self.aliases.get(text, text)
        try:
            value = self.type(text)
        except ValueError:
            raise ConfigError(
                f"{where}: bad value {text!r} for {self.name!r}; allowed: {self.allowed()}"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where}: bad value {text!r} for {self.name!r}; allowed: {self.allowed()}")
        if self.type is float and not math.isfinite(value):
            raise ConfigError(f"{where}: bad value {text!r} for {self.name!r}; allowed: {self.allowed()}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ConfigError(f"{where}: bad value {text!r} for {self.name!r}; allowed: {self.allowed()}")
        return value


#: Cassandra consistency levels a config may name.
CONSISTENCY_LEVELS = ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")

#: Every configuration option, in the order the README documents them.
OPTIONS: tuple[Option, ...] = (
    Option("database", "url", str, None,
           "URL of the L1 database: an SQLAlchemy URL (sqlite:///l1db.sqlite3, "
           "postgresql://user@host/db, mysql://user@host/db) or cassandra://HOST[:PORT][,HOST...]/KEYSPACE "
           "(required)"),
    Option("l1db", "dia_object_index", str, "baseline",
           "DiaObject indexing: baseline = key (diaObjectId, validityStart); pix_id_iov = key "
           "(pixelId, diaObjectId, validityStart); last_object_table = also a DiaObjectLast table "
           "with only the latest versions, used by the read path",
           choices=("baseline", "pix_id_iov", "last_object_table"),
           aliases={"htm20_id_iov": "pix_id_iov"}, backend="sql"),
    Option("l1db", "dia_object_nightly", int, 0,
           "1 = new DiaObject versions go to an unindexed DiaObjectNightly table merged by dailyJob()",
           choices=(0, 1), backend="sql"),
    Option("l1db", "object_last_replace", int, 0,
           "1 = update the latest-version table with the backend's native upsert instead of "
           "delete + insert", choices=(0, 1), backend="sql"),
    Option("l1db", "pixelization", str, "htm", "sky pixelization of the pixelId column: htm or healpix",
           choices=("htm", "healpix"), backend="sql"),
    Option("l1db", "pixel_level", int, 0,
           "HTM level (1-24) or HEALPix nested order (0-29); 0 = the default (HTM 20, HEALPix 16)",
           minimum=0, backend="sql"),
    Option("l1db", "pixel_max_ranges", int, 64,
           "largest number of pixel ranges a region is turned into (more ranges: tighter superset)",
           minimum=1, backend="sql"),
    Option("l1db", "read_full_objects", int, 0,
           "0 = getDiaObjects returns the columns the AP loop needs; 1 = every column", choices=(0, 1)),
    Option("l1db", "read_sources_months", int, 12,
           "DiaSource history window in months (30-day months) before the visit; 0 = do not read",
           minimum=0),
    Option("l1db", "read_forced_sources_months", int, 12,
           "DiaForcedSource history window in months (30-day months); 0 = do not read", minimum=0),
    Option("l1db", "source_select", str, "by-oid",
           "how DiaSource history is selected: by-oid = by diaObjectId (chunked); by-fov = by the "
           "region's pixel ranges", choices=("by-oid", "by-fov"), backend="sql"),
    Option("l1db", "schema_file", str, "",
           "schema description (schema/ format); empty = the packaged APDB schema"),
    # Time partitions (PostgreSQL declarative partitioning; issue 12, part 2).
    Option("l1db", "history_partition_days", int, 0,
           "PostgreSQL only: partition DiaSource, DiaForcedSource (and DiaObject where it is the history "
           "table, with last_object_table) by time, in partitions of N days counted from MJD 0; 0 = off",
           minimum=0, backend="sql"),
    Option("l1db", "retention_days", int, 0,
           "with history_partition_days: dailyJob() drops the time partitions that end more than N days "
           "before the last stored visit (at least the history windows); 0 = keep everything",
           minimum=0, backend="sql"),
    # cassandra: only with a cassandra:// URL.
    Option("cassandra", "replication_factor", int, 1,
           "replicas of every row (the keyspace's SimpleStrategy replication_factor, set by create_l1_schema)",
           minimum=1, backend="cassandra"),
    Option("cassandra", "read_consistency", str, "QUORUM", "consistency level of the reads",
           choices=CONSISTENCY_LEVELS, backend="cassandra"),
    Option("cassandra", "write_consistency", str, "QUORUM",
           "consistency level of the writes: a visit is recorded only once all its rows are acknowledged at it",
           choices=CONSISTENCY_LEVELS, backend="cassandra"),
    Option("cassandra", "part_pixelization", str, "mq3c",
           "sky pixelization of the spatial partitions (lsst-sphgeom's): htm, q3c, mq3c or healpix",
           choices=("htm", "q3c", "mq3c", "healpix"), backend="cassandra"),
    Option("cassandra", "part_pixel_level", int, 7,
           "level of the spatial partitions (HTM 1-24, Q3C 1-30, MQ3C 1-29, HEALPix 0-17); MQ3C 7 puts a whole "
           "3.5-degree field in ~30 partitions (production: level 10, one detector per client)", minimum=0,
           backend="cassandra"),
    Option("cassandra", "time_partition_days", int, 30,
           "length of the time partitions of DiaObject, DiaSource and DiaForcedSource, days (counted from MJD 0)",
           minimum=1, backend="cassandra"),
    Option("cassandra", "read_concurrency", int, 500,
           "largest number of partition queries in flight at once", minimum=1, backend="cassandra"),
    Option("cassandra", "write_concurrency", int, 16,
           "largest number of batches in flight at once (each up to batch_max_kib: more only fills the "
           "connection's buffers, and the driver then fails requests with ConnectionBusy)", minimum=1,
           backend="cassandra"),
    Option("cassandra", "batch_max_kib", int, 1024,
           "largest single-partition batch of a store, KiB of row data", minimum=1, backend="cassandra"),
    Option("cassandra", "read_timeout", float, 120.0, "request timeout of the reads, seconds", minimum=0.1,
           backend="cassandra"),
    Option("cassandra", "write_timeout", float, 60.0, "request timeout of the writes, seconds", minimum=0.1,
           backend="cassandra"),
    Option("cassandra", "connect_timeout", float, 10.0, "timeout of connecting to the cluster, seconds",
           minimum=0.1, backend="cassandra"),
    # ap_proto: the simulated AP loop. Command-line options override these.
    Option("ap_proto", "interval", float, 45.0, "seconds between visits (night-time only)", minimum=0.001),
    Option("ap_proto", "divide", int, 1,
           "split the field into N x N tiles processed concurrently, one process and connection each",
           minimum=1, maximum=64),
    Option("ap_proto", "fov", float, 3.5, "field of view diameter, degrees", minimum=0.01, maximum=90.0),
    Option("ap_proto", "sky", str, "south", "where pointings fall: south (Dec <= 0) or full sky",
           choices=("south", "full")),
    Option("ap_proto", "pointing_area", str, "",
           "RA_MIN,RA_MAX,DEC_MIN,DEC_MAX degrees: confine pointings to a patch so fields overlap "
           "within tens of visits (RA_MIN > RA_MAX wraps through RA 0: 350,10 is the 20 degrees around it); "
           "empty = the whole of `sky`"),
    Option("ap_proto", "detection_fraction", float, 1.0,
           "probability that a catalogue source in the field is detected", minimum=0.0, maximum=1.0),
    Option("ap_proto", "false_per_visit", float, 5050.0, "mean number of noise DiaSources per field",
           minimum=0.0),
    Option("ap_proto", "transients_per_visit", float, 100.0, "mean number of new transients per field",
           minimum=0.0),
    Option("ap_proto", "match_radius", float, 1.0, "association radius, arcsec", minimum=1e-6),
    Option("ap_proto", "forced_cutoff_days", float, 30.0,
           "no forced photometry for objects not detected for longer than this, days", minimum=0.0),
    Option("ap_proto", "seed", int, 1, "random seed of pointings and simulation (a run is reproducible)",
           minimum=0),
    Option("ap_proto", "start_time", str, "2026-01-01T20:00:00",
           "time (ISO, TAI) of the first visit of a new database; later runs resume after the last visit"),
    Option("ap_proto", "start_visit_id", int, 1, "visit ID of the first visit of a new database", minimum=0),
    Option("ap_proto", "row_count_every", int, 100,
           "log the row count of every table every N visits (0 = never)", minimum=0),
    Option("ap_proto", "daily_job_every", int, 0,
           "run dailyJob() (the nightly-table merge) every N visits; 0 = between nights, as the survey would",
           minimum=0),
    Option("ap_proto", "retry_attempts", int, 5,
           "on a connection-level database error (a server restart, a failover, a node gone) reconnect and "
           "retry the visit's tile up to N times, then stop; 0 = stop at the first failure", minimum=0),
    Option("ap_proto", "retry_wait", float, 2.0,
           "seconds before the first retry, doubled before each next one (defaults: 2+4+8+16+32 = 62 s "
           "in all)", minimum=0.0),
    # ap_proto time compression (issue 12): K observations of each point a simulated year.
    Option("ap_proto", "observations_per_year", float, 0.0,
           "time compression: observe each point of the pointing area about K times per simulated year; the "
           "visits a night, the interval and the days between nights are derived (printed, and kept in the "
           "provenance record); 0 = no compression (interval, every night)", minimum=0.0),
    Option("ap_proto", "days_between_nights", int, 1,
           "days from one observing night to the next (1 = every night); derived when observations_per_year "
           "is set", minimum=1, maximum=3650),
)

#: Sections that belong to l1db (the others belong to the tools, e.g. ap_proto).
_SECTIONS = ("database", "l1db", "cassandra")

#: URL schemes (SQLAlchemy dialects, and cassandra) the toolkit has drivers for.
URL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "cassandra")


def _option_table() -> dict[str, dict[str, Option]]:
    table: dict[str, dict[str, Option]] = {}
    for opt in OPTIONS:
        table.setdefault(opt.section, {})[opt.name] = opt
    return table


def normalize_url(url: str) -> str:
    """Return ``url`` with the driver spelled out where the toolkit needs one.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3 and ``mysql://``
    to mysqlclient; the toolkit installs psycopg2, so it is named explicitly.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    if url.startswith("mysql://") or url.startswith("mariadb://"):
        return "mysql+mysqldb://" + url.split("://", 1)[1]
    return url


def safe_url(url: str | sqlalchemy.URL) -> str:
    """Render a database URL with its password hidden, for messages and logs."""
    if isinstance(url, str) and url.lower().startswith("cassandra://") and "@" not in url:
        return url  # holds no password: parse_cassandra_url refuses user info
    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Never echo an unparseable URL: it may hold a password in any position.
        return "<unparseable database URL>"


@dataclasses.dataclass(frozen=True)
class L1dbConfig:
    """Validated configuration: one attribute per option of `OPTIONS`.

    Attributes other than ``url`` are named as the options are; ``path`` is the
    file the config was read from, if any.
    """

    url: str
    dia_object_index: str = "baseline"
    dia_object_nightly: int = 0
    object_last_replace: int = 0
    pixelization: str = "htm"
    pixel_level: int = 0
    pixel_max_ranges: int = 64
    read_full_objects: int = 0
    read_sources_months: int = 12
    read_forced_sources_months: int = 12
    source_select: str = "by-oid"
    schema_file: str = ""
    # Time partitions (issue 12, part 2).
    history_partition_days: int = 0
    retention_days: int = 0
    cassandra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    path: str | None = None
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def backend(self) -> str:
        """``cassandra`` for a cassandra:// URL, ``sql`` otherwise."""
        return "cassandra" if self.url.split(":", 1)[0].lower() == "cassandra" else "sql"

    @property
    def effective_pixel_level(self) -> int:
        """`pixel_level` with 0 replaced by the pixelization's default."""
        if self.pixel_level:
            return self.pixel_level
        return 20 if self.pixelization == "htm" else 16

    def replace(self, **changes: Any) -> L1dbConfig:
        """Return a copy with some options changed (validated like a file)."""
        where = "config override"
        table = _option_table()
        for name, value in changes.items():
            opt = table["l1db"].get(name) or table["database"].get(name)
            if opt is None:
                raise ConfigError(f"{where}: unknown option {name!r}")
            if not isinstance(value, str):
                value = str(value)
            changes[name] = opt.parse(value, where)
        return dataclasses.replace(self, **changes)

    def as_dict(self, hide_password: bool = True) -> dict[str, Any]:
        """Every effective option as ``{section: {name: value}}`` (for provenance)."""
        out: dict[str, Any] = {"database": {"url": safe_url(self.url) if hide_password else self.url}}
        out["l1db"] = {o.name: getattr(self, o.name) for o in OPTIONS
                       if o.section == "l1db" and o.backend in (None, self.backend)}
        if self.backend == "cassandra":
            out["cassandra"] = {o.name: self.cassandra.get(o.name, o.default) for o in OPTIONS
                                if o.section == "cassandra"}
        for section, values in self.sections.items():
            out[section] = dict(values)
        return out


def default_config_path() -> Path:
    """Path of the packaged default config (SQLite in the working directory)."""
    import l1dbproto_cfg

    return Path(l1dbproto_cfg.__file__).parent / "l1db-sqlite.cfg"


_PIXEL_LEVELS = {"htm": (1, 24), "healpix": (0, 29)}
#: Levels of lsst-sphgeom's pixelizations (HEALPix: sphgeom's HealpixPixelization).
_PART_LEVELS = {"htm": (1, 24), "q3c": (1, 30), "mq3c": (1, 29), "healpix": (0, 17)}


def _check_pixel_level(values: Mapping[str, Any], where: str) -> None:
    kind = values.get("pixelization", "htm")
    level = values.get("pixel_level", 0)
    low, high = _PIXEL_LEVELS[kind]
    if level and not low <= level <= high:
        raise ConfigError(
            f"{where}: bad value {level!r} for 'pixel_level' with pixelization {kind}; "
            f"allowed: {low}-{high}, or 0 for the default"
        )


def _check_part_level(values: Mapping[str, Any], where: str) -> None:
    kind = values["part_pixelization"]
    level = values["part_pixel_level"]
    low, high = _PART_LEVELS[kind]
    if not low <= level <= high:
        raise ConfigError(
            f"{where}: bad value {level!r} for 'part_pixel_level' with part_pixelization {kind}; "
            f"allowed: {low}-{high}"
        )


def check_time_partitions(values: Mapping[str, Any], url: str, where: str) -> None:
    """Check the time-partition options against the URL's backend and the history windows.

    ``values`` maps [l1db] option names to values (missing ones take their
    defaults). Time partitions are PostgreSQL's declarative partitioning:
    SQLite has none; MariaDB/MySQL RANGE partitioning needs an integer or
    date partition expression that every unique key includes, and the time
    columns are DOUBLE; Cassandra has its own (``[cassandra] time_partition_days``).

    Raises
    ------
    ConfigError
        Naming ``where`` (file and section) and the key.
    """
    from .api import MONTH_DAYS  # the history windows' month; api imports this module

    days = values.get("history_partition_days", 0)
    retention = values.get("retention_days", 0)
    if not days and not retention:
        return
    key = "history_partition_days" if days else "retention_days"
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme == "cassandra":
        raise ConfigError(f"{where} {key!r}: the SQL time partitions mean nothing for Cassandra, which has "
                          "its own ([cassandra] time_partition_days); remove it")
    if scheme == "sqlite":
        raise ConfigError(f"{where} {key!r}: SQLite has no table partitioning; time partitions need a "
                          "postgresql:// URL (set it to 0)")
    if scheme in ("mysql", "mariadb"):
        raise ConfigError(f"{where} {key!r}: not supported on MariaDB/MySQL (RANGE partitioning there needs an "
                          "integer or date partition expression in every unique key, and the time columns are "
                          "DOUBLE); time partitions need a postgresql:// URL (set it to 0)")
    if retention and not days:
        raise ConfigError(f"{where} 'retention_days': needs history_partition_days > 0 (retention drops whole "
                          "time partitions)")
    months = max(values.get("read_sources_months", 12), values.get("read_forced_sources_months", 12))
    window = months * MONTH_DAYS
    if retention and retention < window:
        raise ConfigError(f"{where} 'retention_days': {retention} is shorter than the history window "
                          f"({window:g} days of read_sources_months/read_forced_sources_months), so reads "
                          f"would miss rows; allowed: 0 or >= {window:g}")


_CQL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


@dataclasses.dataclass(frozen=True)
class CassandraURL:
    """The parts of ``cassandra://HOST[:PORT][,HOST...]/KEYSPACE``."""

    hosts: tuple[str, ...]
    port: int
    keyspace: str


def parse_cassandra_url(url: str) -> CassandraURL:
    """Split a cassandra:// URL into hosts, port (default 9042) and keyspace.

    Raises
    ------
    ConfigError
        If the URL is not of that form (the message quotes no password).
    """
    form = "expected cassandra://HOST[:PORT][,HOST...]/KEYSPACE"
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "cassandra" or not sep:
        raise ConfigError(f"not a cassandra:// URL; {form}")
    netloc, slash, keyspace = rest.partition("/")
    if "@" in netloc:
        raise ConfigError(f"cassandra URL: user names and passwords are not supported; {form}")
    if not slash or not _CQL_NAME.fullmatch(keyspace):
        raise ConfigError(f"cassandra URL: bad or missing keyspace name {keyspace!r} "
                          f"(a letter, then letters, digits or _; at most 48); {form}")
    hosts, ports = [], set()
    for part in netloc.split(","):
        host, colon, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "")
        if not host:
            raise ConfigError(f"cassandra URL: empty host; {form}")
        if colon:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"cassandra URL: bad port {port!r}; {form}")
            ports.add(int(port))
        hosts.append(host)
    if len(ports) > 1:
        raise ConfigError("cassandra URL: every host must use the same port")
    return CassandraURL(tuple(hosts), ports.pop() if ports else 9042, keyspace)


def load_config(path: str | Path) -> L1dbConfig:
    """Read and validate a configuration file.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        The INI file.

    Raises
    ------
    ConfigError
        With a message naming the file, section, key and allowed values.
    """
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep key case, so that errors quote what the user wrote
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (configparser.Error, UnicodeDecodeError, IsADirectoryError) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not a valid INI file: {reason}") from None

    table = _option_table()
    for section in parser.sections():
        if section not in table:
            raise ConfigError(
                f"{path}: unknown section [{section}]; allowed: "
                + ", ".join(f"[{s}]" for s in table)
            )
    if not parser.has_section("database"):
        raise ConfigError(f"{path}: missing section [database] (with key 'url')")

    values: dict[str, Any] = {}
    given: dict[str, list[Option]] = {}
    # Sections other than l1db's own belong to the tools (ap_proto):
    # validated here like the rest, handed over with their defaults filled in.
    sections: dict[str, dict[str, Any]] = {
        s: {name: opt.default for name, opt in opts.items()}
        for s, opts in table.items() if s not in _SECTIONS
    }
    for section in parser.sections():
        for key, text in parser.items(section):
            where = f"{path}: [{section}]"
            opt = table[section].get(key)
            if opt is None:
                raise ConfigError(
                    f"{where}: unknown key {key!r}; allowed: {', '.join(table[section])}"
                )
            given.setdefault(section, []).append(opt)
            if section in _SECTIONS:
                values[key] = opt.parse(text, where)
            else:
                sections[section][key] = opt.parse(text, where)
    _check_pixel_level(values, f"{path}: [l1db]")
    url = values.pop("url", None)
    if not url:
        raise ConfigError(f"{path}: [database]: missing key 'url' (an SQLAlchemy URL or cassandra://...)")
    backend = _check_url(url, f"{path}: [database]: 'url'")
    check_time_partitions(values, url, f"{path}: [l1db]")
    for section, opts in given.items():
        for opt in opts:
            if opt.backend is not None and opt.backend != backend:
                raise ConfigError(
                    f"{path}: [{section}] {opt.name!r} means nothing for the {backend} backend of url "
                    f"{safe_url(url) if backend == 'sql' else url}; remove it"
                )
    cassandra = {o.name: values.pop(o.name, o.default) for o in OPTIONS if o.section == "cassandra"}
    if backend == "cassandra":
        _check_part_level(cassandra, f"{path}: [cassandra]")
    return L1dbConfig(url=url, path=str(path), sections=sections,
                      cassandra=cassandra if backend == "cassandra" else {}, **values)


def _check_url(url: str, where: str) -> str:
    """Validate a database URL; return its backend (``sql`` or ``cassandra``)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme not in URL_SCHEMES:
        raise ConfigError(f"{where}: unsupported URL scheme {scheme or '(none)'!r}; allowed: "
                          + ", ".join(f"{s}://" for s in URL_SCHEMES))
    if scheme == "cassandra":
        try:
            parse_cassandra_url(url)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return "cassandra"
    try:
        parsed = sqlalchemy.make_url(normalize_url(url))
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"{where}: not an SQLAlchemy URL") from None
    check_driver(parsed, where)
    return "sql"


def check_driver(url: sqlalchemy.URL, where: str) -> None:
    """Make sure the SQLAlchemy dialect and driver (DBAPI module) of ``url`` can be loaded.

    Raises
    ------
    ConfigError
        Naming the driver, e.g. for ``mysql+pymysql://`` without PyMySQL.
    """
    driver = url.drivername
    try:
        url.get_dialect().import_dbapi()
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"{where}: unknown SQLAlchemy dialect or driver {driver!r}") from None
    except ImportError as exc:
        raise ConfigError(f"{where}: the driver of {driver}:// is not installed ({exc.name or exc}); "
                          f"use {url.get_backend_name()}:// for the toolkit's driver") from None
