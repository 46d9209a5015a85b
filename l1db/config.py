"""Configuration files: INI sections ``[database]``, ``[l1db]`` and ``[cassandra]``, and the tools' own.

Example::

    [database]
    url = sqlite:///l1db.sqlite3

    [l1db]
    dia_object_index = last_object_table
    pixelization = htm

A file may leave out any option (its default applies) and any section except
``[database]``.

One declaration per option
--------------------------
Every option is declared once, as a field of its section's pydantic model:
`DatabaseSection`, `L1dbSection` and `CassandraSection` here; a tool built on
l1db declares its own sections (``[ap_proto]``: `dia_sim.options`) and hands
them to ``load_config(path, sections={...})``. The declaration (`option`:
type, default, bounds or choices, backend tag, one line of documentation,
cross-field checks as validators of the model) is all there is: loading and
validation, the one-line errors (``FILE: [section] key: bad value 'x';
allowed: ...``, ``--flag: ...``), the objects the code uses (`L1dbConfig`,
`dia_sim.options.RunOptions`), ``ap_proto --help`` and the option table of
docs/configuration.md follow from it (`l1db.config_model`).

To add an option, add one field to its section's model, e.g. in `L1dbSection`::

    #: my feature: ...
    time_partition_days: int = option(30, "length of a time partition, days", ge=1, backend="sql")

(an ``[ap_proto]`` option: a field of `dia_sim.options.RunSettings`, or of
`dia_sim.options.SimConfig` for the simulation). The field is then an
attribute of `L1dbConfig` (or `RunOptions` / ``RunOptions.sim``), a key of
the file, a flag of ``ap_proto`` and a row of the option table of
docs/configuration.md. Then show the key in the example configs of ``cfg/``
(``key = default``) and write the generated docs (``python -m
dia_sim.cli.readme_tables docs/*.md cfg/*.cfg``: the option table and the
comment above each key; tests check both).

- choices: annotate ``Literal["a", "b"]`` (``Switch`` for 0 | 1); bounds: ``ge=``,
  ``gt=``, ``le=``, ``lt=``; the allowed values are described from them;
- a value with a form of its own (``N or camera``, a time, a list): annotate
  ``Annotated[T, BeforeValidator(parse)]`` with ``parse`` raising `ValueError`,
  and say the form in ``allowed=`` (and ``metavar=`` for the flag);
- an option for one backend only: ``backend="sql"`` or ``"cassandra"``;
- a check involving several options: a ``model_validator(mode="after")`` of the
  section raising `bad_value` (or `option_error`) for the key to blame.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .backends import BACKENDS, CASSANDRA, URL_SCHEMES, backend_for
from .config_model import (
    INT_TEXT,
    ConfigError,
    Section,
    Switch,
    aliased,
    bad_value,
    option,
    option_backend,
    option_error,
    option_fields,
    validate_section,
)
from .constants import MONTH_DAYS
from .pixel_kinds import DEFAULT_PIXEL_LEVELS, LEVEL_LIMITS, PIXELIZATION_KINDS

if TYPE_CHECKING:
    import sqlalchemy

__all__ = [
    "ConfigError",
    "Section",
    "option",
    "Switch",
    "bad_value",
    "option_error",
    "DatabaseSection",
    "L1dbSection",
    "CassandraSection",
    "L1DB_SECTIONS",
    "TOOL_SECTIONS",
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
]

#: Cassandra consistency levels a config may name.
CONSISTENCY_LEVELS = ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")


def _levels(kinds: tuple[str, ...]) -> str:
    """The allowed levels of some pixelizations, from `l1db.pixel_kinds.LEVEL_LIMITS`."""
    return ", ".join(f"{kind.upper().replace('HEALPIX', 'HEALPix')} {low}-{high}"
                     for kind in kinds for low, high in [LEVEL_LIMITS[kind]])


class DatabaseSection(Section):
    """``[database]``: where the L1 database is."""

    url: str = option(
        doc="URL of the L1 database: an SQLAlchemy URL (sqlite:///l1db.sqlite3, postgresql://user@host/db, "
        "mysql://user@host/db) or cassandra://HOST[:PORT][,HOST...]/KEYSPACE (required)")

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        _check_url(url)
        return url

    @property
    def backend(self) -> str:
        """The kind of backend of the URL (`l1db.backends.KINDS`): ``sql`` or ``cassandra``."""
        return backend_for(self.url).kind


_PIXELIZATIONS = ("htm", "healpix")


class L1dbSection(Section):
    """``[l1db]``: layout and reads of the L1 database."""

    dia_object_index: Annotated[Literal["baseline", "pix_id_iov", "last_object_table"],
                                aliased({"htm20_id_iov": "pix_id_iov"})] = option(
        "baseline",
        "DiaObject indexing: baseline = key (diaObjectId, validityStart); pix_id_iov = key "
        "(pixelId, diaObjectId, validityStart); last_object_table = also a DiaObjectLast table "
        "with only the latest versions, used by the read path", backend="sql")
    dia_object_nightly: Switch = option(
        0, "1 = new DiaObject versions go to an unindexed DiaObjectNightly table merged by dailyJob()",
        backend="sql")
    object_last_replace: Switch = option(
        0, "1 = update the latest-version table with the backend's native upsert instead of delete + insert",
        backend="sql")
    pixelization: Literal[_PIXELIZATIONS] = option(  # type: ignore[valid-type]
        "htm", "sky pixelization of the pixelId column", backend="sql")
    pixel_level: int = option(
        0, "level (HEALPix: nested order) of the pixelId column's pixelization; 0 = the default ("
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_PIXEL_LEVELS.items()) + ")",
        allowed=f"0 (the default), {_levels(_PIXELIZATIONS)}", backend="sql", ge=0)
    pixel_max_ranges: int = option(
        64, "largest number of pixel ranges a region is turned into (more ranges: tighter superset)",
        ge=1, backend="sql")
    read_full_objects: Switch = option(
        0, "0 = getDiaObjects returns the columns the AP loop needs (read from DiaObjectLast where there is "
        "one: it holds only its published columns); 1 = every DiaObject column: where there is a DiaObjectLast "
        "(last_object_table, Cassandra) the latest versions' full rows are read from DiaObject by their key "
        "(diaObjectId, validityStartMjdTai); not with retention_days, which drops them")
    read_sources_months: int = option(
        12, "DiaSource history window in months (30-day months) before the visit; 0 = do not read", ge=0)
    read_forced_sources_months: int = option(
        12, "DiaForcedSource history window in months (30-day months); 0 = do not read", ge=0)
    source_select: Literal["by-oid", "by-fov"] = option(
        "by-oid", "how DiaSource history is selected: by-oid = by diaObjectId (chunked); by-fov = by the "
        "region's pixel ranges", backend="sql")
    schema_file: str = option("", "schema description (schema/ format); empty = the packaged APDB schema")
    history_partition_days: int = option(
        0, "PostgreSQL only: partition DiaSource, DiaForcedSource (and DiaObject where it is the history "
        "table, with last_object_table) by time, in partitions of N days counted from MJD 0; 0 = off",
        ge=0, backend="sql")
    retention_days: int = option(
        0, "with history_partition_days: dailyJob() drops the time partitions that end more than N days "
        "before the last stored visit (at least the history windows); 0 = keep everything", ge=0, backend="sql")
    enable_replica: Switch = option(
        0, "1 = every store also writes the visit's rows into the replica-chunk tables production keeps for "
        "the PPDB (ApdbReplicaChunks, Dia*Chunks as dax_apdb makes them; not with dia_object_nightly)")
    replica_chunk_seconds: int = option(
        600, "with enable_replica: length of a replica chunk, seconds of visit time (dax_apdb's default)", ge=1)

    @model_validator(mode="after")
    def _check_time_partitions(self, info: ValidationInfo) -> L1dbSection:
        """Time partitions are PostgreSQL's declarative partitioning, and retention keeps the history windows.

        SQLite has none; MariaDB/MySQL RANGE partitioning needs an integer or
        date partition expression that every unique key includes, and the
        time columns are DOUBLE; Cassandra has its own (``[cassandra] time_partition_days``).
        """
        days, retention = self.history_partition_days, self.retention_days
        if not days and not retention:
            return self
        key = "history_partition_days" if days else "retention_days"
        _, url = self._backend(info)
        if not url:
            return self  # checked again where the URL is known (`L1dbConfig`)
        reason = backend_for(str(url)).no_time_partitions
        if reason:
            raise option_error(key, f"{reason}; time partitions need a postgresql:// URL (set it to 0)")
        if retention and not days:
            raise option_error("retention_days", "needs history_partition_days > 0 (retention drops whole time "
                                                 "partitions)")
        window = max(self.read_sources_months, self.read_forced_sources_months) * MONTH_DAYS
        if retention and retention < window:
            raise bad_value("retention_days", retention, f"0 or >= {window:g}",
                            f"(shorter than the history window of {window:g} days, so reads would miss rows)")
        if retention and self.read_full_objects and self.dia_object_index == "last_object_table":
            raise option_error("read_full_objects", "1 cannot be served with retention_days: the full latest rows "
                               "are read from DiaObject, whose old time partitions retention drops (set one of "
                               "them to 0)")
        return self

    @model_validator(mode="after")
    def _check_replica(self) -> L1dbSection:
        """The replica's DiaObject chunk rows name DiaObject versions, which the nightly table holds back."""
        if self.enable_replica and self.dia_object_nightly:
            raise option_error("enable_replica", "1 cannot be used with dia_object_nightly = 1: the new DiaObject "
                               "versions reach DiaObject only at dailyJob(), after their store (set one of them to 0)")
        return self

    @model_validator(mode="after")
    def _check_pixel_level(self) -> L1dbSection:
        low, high = LEVEL_LIMITS[self.pixelization]
        if self.pixel_level and not low <= self.pixel_level <= high:
            raise bad_value("pixel_level", self.pixel_level, f"{low}-{high}, or 0 for the default",
                            f"with pixelization {self.pixelization}")
        return self

    @property
    def effective_pixel_level(self) -> int:
        """`pixel_level` with 0 replaced by the pixelization's default."""
        return self.pixel_level or DEFAULT_PIXEL_LEVELS[self.pixelization]


class CassandraSection(Section):
    """``[cassandra]``: only with a cassandra:// URL."""

    replication_factor: int = option(
        1, "replicas of every row (the keyspace's SimpleStrategy replication_factor, set by create_l1_schema)",
        ge=1, backend="cassandra")
    read_consistency: Literal[CONSISTENCY_LEVELS] = option(  # type: ignore[valid-type]
        "QUORUM", "consistency level of the reads", backend="cassandra")
    write_consistency: Literal[CONSISTENCY_LEVELS] = option(  # type: ignore[valid-type]
        "QUORUM", "consistency level of the writes: a visit is recorded only once all its rows are "
        "acknowledged at it", backend="cassandra")
    part_pixelization: Literal[PIXELIZATION_KINDS] = option(  # type: ignore[valid-type]
        "mq3c", "sky pixelization of the spatial partitions",
        backend="cassandra")
    part_pixel_level: int = option(
        7, "level of the spatial partitions; MQ3C 7 puts a whole 3.5-degree field in ~30 partitions "
        "(production: level 10, one detector per client)", allowed=_levels(PIXELIZATION_KINDS), ge=0,
        backend="cassandra")
    time_partition_days: int = option(
        30, "length of the time partitions of DiaObject, DiaSource and DiaForcedSource, days (counted from MJD 0)",
        ge=1, backend="cassandra")
    time_partition_tables: Switch = option(
        0, "layout of DiaObject, DiaSource and DiaForcedSource: 0 = one table each, the time partition in the "
        "partition key; 1 = one table per time partition (e.g. DiaSource_2000), partitioned by sky pixel "
        "alone, made ahead of the stores that reach it (dax_apdb's time_partition_tables)",
        backend="cassandra")
    read_concurrency: int = option(
        500, "largest number of partition queries in flight at once", ge=1, backend="cassandra")
    spatial_queries: Annotated[Literal["auto"] | Annotated[int, Field(ge=0)], INT_TEXT] = option(
        "auto", "shape of the reads: the statements a read of one table is split into, each with its share of "
        "the region's sky pixels in an IN list (never more than one per pixel); 0 = one per sky pixel (its "
        "time partitions in an IN list), read_concurrency at a time; 1 = one with every sky pixel, which the "
        "node fans out (dax_apdb's default, query_per_spatial_part = False); auto = 1, except the DiaSource "
        "history below part_pixel_level 10 (large partitions of wide rows), read one query per pixel: the "
        "faster shape of each read in BENCHMARKS.md", allowed="auto or an integer >= 0", backend="cassandra")
    write_concurrency: int = option(
        16, "largest number of batches in flight at once (and at most write_inflight_kib of them)", ge=1,
        backend="cassandra")
    replica_sub_chunk_count: int = option(
        64, "with [l1db] enable_replica: sub-partitions of each replica chunk (dax_apdb's default); a store "
        "writes each table's chunk rows to one of them", ge=1, backend="cassandra")
    # -- back-pressure --
    write_inflight_kib: int = option(
        8192, "largest KiB of row data in flight at once in a store's batches (a batch larger than this is "
        "sent alone): what the node has not yet read waits in the connection's buffers, and a full buffer "
        "fails requests with ConnectionBusy", ge=1, backend="cassandra")
    backpressure_tries: int = option(
        6, "tries of one request the node refused (ConnectionBusy, Overloaded) or, for a read, dropped "
        "(ReadTimeout, ReadFailure), each after the requests in flight have ended and a pause; then it "
        "fails (and ap_proto retries the tile)", ge=1, backend="cassandra")
    backpressure_pause: float = option(
        0.25, "seconds paused before the first resend of refused requests (once the requests in flight have "
        "ended); doubled at each further try", ge=0, backend="cassandra")
    # -- end of back-pressure --
    batch_max_kib: int = option(
        1024, "largest single-partition batch of a store, KiB of row data", ge=1, backend="cassandra")
    read_timeout: float = option(120.0, "request timeout of the reads, seconds", ge=0.1, backend="cassandra")
    write_timeout: float = option(60.0, "request timeout of the writes, seconds", ge=0.1, backend="cassandra")
    connect_timeout: float = option(10.0, "timeout of connecting to the cluster, seconds", ge=0.1,
                                    backend="cassandra")

    @model_validator(mode="after")
    def _check_part_level(self) -> CassandraSection:
        low, high = LEVEL_LIMITS[self.part_pixelization]
        if not low <= self.part_pixel_level <= high:
            raise bad_value("part_pixel_level", self.part_pixel_level, f"{low}-{high}",
                            f"with part_pixelization {self.part_pixelization}")
        return self


#: l1db's own sections, in the order docs/configuration.md documents them.
L1DB_SECTIONS: dict[str, type[Section]] = {
    "database": DatabaseSection,
    "l1db": L1dbSection,
    "cassandra": CassandraSection,
}

#: Sections a config file may hold for the tools built on l1db. l1db knows
#: only their names, not their options: a tool validates its section by handing
#: its model to `load_config` (``[ap_proto]``: `dia_sim.options`).
TOOL_SECTIONS = ("ap_proto",)


def _internal(**kwargs: Any) -> Any:
    return Field(json_schema_extra={"internal": True}, **kwargs)


class L1dbConfig(L1dbSection, DatabaseSection):
    """Validated configuration: ``url``, one attribute per `L1dbSection` option, and the others.

    ``cassandra`` holds the `CassandraSection` options (a dict; empty for an
    SQL URL), ``path`` the file the config was read from (if any) and
    ``sections`` the tools' sections that were validated at loading
    (``{"ap_proto": {key: value}}``, JSON values: they go to provenance
    records). Made directly (``L1dbConfig(url=...)``) it is validated like a
    file.
    """

    cassandra: dict[str, Any] = _internal(default_factory=dict)
    path: str | None = _internal(default=None)
    sections: dict[str, dict[str, Any]] = _internal(default_factory=dict)

    def _backend(self, info: ValidationInfo) -> tuple[str | None, str]:
        return self.backend, safe_url(self.url)

    @field_validator("cassandra")
    @classmethod
    def _check_cassandra(cls, values: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        url = info.data.get("url")
        if url is None:
            return values  # the URL's own error is reported
        if backend_for(url).kind == CASSANDRA:
            return CassandraSection.model_validate(values, context={"backend": "cassandra"}).model_dump()
        if values:
            raise bad_value("cassandra", dict(values), "nothing", "for the sql backend")
        return {}

    def where(self, section: str, key: str | None = None) -> str:
        """Where an option comes from, for messages: ``FILE: [section] key``."""
        place = f"{self.path}: [{section}]" if self.path else f"[{section}]"
        return f"{place} {key}" if key else place

    def replace(self, **changes: Any) -> L1dbConfig:
        """Return a copy with some ``[database]`` or ``[l1db]`` options changed (validated like a file)."""
        known = {**option_fields(DatabaseSection), **option_fields(L1dbSection)}
        for name in changes:
            if name not in known:
                raise ConfigError(f"config override: unknown option {name!r}; allowed: {', '.join(known)}")
        values = {name: getattr(self, name) for name in self.model_fields_set}
        return validate_section(L1dbConfig, {**values, **changes},
                                lambda key: f"config override {key}" if key else "config override")

    def as_dict(self, hide_password: bool = True) -> dict[str, Any]:
        """Every effective option as ``{section: {name: value}}`` (for provenance)."""
        out: dict[str, Any] = {"database": {"url": safe_url(self.url) if hide_password else self.url}}
        out["l1db"] = {key: getattr(self, key) for key, field in option_fields(L1dbSection).items()
                       if option_backend(field) in (None, self.backend)}
        if self.backend == CASSANDRA:
            out["cassandra"] = dict(self.cassandra)
        for section, values in self.sections.items():
            out[section] = dict(values)
        return out


def normalize_url(url: str) -> str:
    """Return ``url`` with the driver spelled out where the toolkit needs one.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3 and ``mysql://``
    to mysqlclient; the toolkit installs psycopg2, so it is named explicitly.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    for backend in BACKENDS:
        if backend.driver and scheme in backend.schemes:
            return f"{backend.driver}://{rest}"
    return url


def safe_url(url: str | sqlalchemy.URL) -> str:
    """Render a database URL with its password hidden, for messages and logs."""
    if isinstance(url, str) and url.lower().startswith("cassandra://") and "@" not in url:
        return url  # holds no password: parse_cassandra_url refuses user info
    import sqlalchemy  # here, not at the top: a Cassandra config is read without it

    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Never echo an unparseable URL: it may hold a password in any position.
        return "<unparseable database URL>"


def default_config_path() -> Path:
    """Path of the packaged default config (SQLite in the working directory)."""
    import l1dbproto_cfg

    return Path(l1dbproto_cfg.__file__).parent / "l1db-sqlite.cfg"


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


def load_config(path: str | Path, sections: Mapping[str, type[Section]] | None = None) -> L1dbConfig:
    """Read and validate a configuration file.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        The INI file.
    sections : mapping, optional
        The models of the tools' sections to validate too (``{"ap_proto":
        dia_sim.options.ApProtoSection}``); their values end up in
        ``L1dbConfig.sections``. A tool's section (`TOOL_SECTIONS`) not given
        here is left to its tool.

    Raises
    ------
    ConfigError
        One line naming the file, section, key and the allowed values.
    """
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case: errors quote what the user wrote
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (configparser.Error, UnicodeDecodeError, IsADirectoryError) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not a valid INI file: {reason}") from None

    tools = dict(sections or {})
    models = {**L1DB_SECTIONS, **tools}
    for section in parser.sections():
        if section not in models and section not in TOOL_SECTIONS:
            allowed = dict.fromkeys([*models, *TOOL_SECTIONS])
            raise ConfigError(f"{path}: unknown section [{section}]; allowed: " + ", ".join(f"[{s}]" for s in allowed))
    if not parser.has_section("database"):
        raise ConfigError(f"{path}: missing section [database] (with key 'url')")

    def given(section: str) -> dict[str, str]:
        values = dict(parser.items(section)) if parser.has_section(section) else {}
        keys = option_fields(models[section])
        for key in values:
            if key not in keys:
                raise ConfigError(f"{path}: [{section}] unknown key {key!r}; allowed: {', '.join(keys)}")
        return values

    def where(section: str) -> Any:
        return lambda key: f"{path}: [{section}] {key}" if key else f"{path}: [{section}]"

    database = validate_section(DatabaseSection, given("database"), where("database"))
    context = {"backend": database.backend, "url": safe_url(database.url)}
    l1db = validate_section(L1dbSection, given("l1db"), where("l1db"), context)
    cassandra = validate_section(CassandraSection, given("cassandra"), where("cassandra"), context)
    validated: dict[str, dict[str, Any]] = {}
    for name, model in tools.items():
        keys = option_fields(model)
        internal = {attr for attr, field in model.model_fields.items() if (field.alias or attr) not in keys}
        tool = validate_section(model, given(name), where(name), context)
        validated[name] = tool.model_dump(mode="json", by_alias=True, exclude=internal)
    l1db_given = {name: getattr(l1db, name) for name in l1db.model_fields_set}
    return validate_section(
        L1dbConfig,
        dict(url=database.url, path=str(path), sections=validated,
             cassandra=cassandra.model_dump() if database.backend == CASSANDRA else {}, **l1db_given),
        lambda key: f"{path}: {key}" if key else str(path),
    )


def _check_url(url: str) -> None:
    """Validate a database URL (`ValueError` saying what is wrong)."""
    if backend_for(url).kind == CASSANDRA:  # ValueError for an unknown scheme
        try:
            parse_cassandra_url(url)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return
    # The port said in our words (SQLAlchemy's is "invalid literal for int()"); only the port is echoed,
    # never the rest of the URL, which may hold a password.
    host_port = url.partition("://")[2].rpartition("@")[2].partition("/")[0].partition("?")[0]
    port = host_port.rpartition(":")[2] if ":" in host_port and not host_port.endswith("]") else ""
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"bad port {port!r}; allowed: an integer from 1 to 65535 (SCHEME://USER:PASSWORD@HOST:PORT/"
                         f"DATABASE)")
    import sqlalchemy  # here, not at the top: only an SQL URL is parsed by it

    try:
        parsed = sqlalchemy.make_url(normalize_url(url))
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ValueError("not an SQLAlchemy URL") from None
    if parsed.get_backend_name() in ("mysql", "mariadb") and not parsed.database:
        # MariaDB has no default database: without one, every tool would fail deep in the driver.
        raise ValueError("names no database; allowed: mysql://USER:PASSWORD@HOST:PORT/DATABASE (an existing "
                         "database: CREATE DATABASE name)")
    try:
        check_driver(parsed, "")
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix(": ")) from None


def check_driver(url: sqlalchemy.URL, where: str) -> None:
    """Make sure the SQLAlchemy dialect and driver (DBAPI module) of ``url`` can be loaded.

    Raises
    ------
    ConfigError
        Naming the driver, e.g. for ``mysql+pymysql://`` without PyMySQL.
    """
    import sqlalchemy.exc

    driver = url.drivername
    try:
        url.get_dialect().import_dbapi()
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"{where}: unknown SQLAlchemy dialect or driver {driver!r}") from None
    except ImportError as exc:
        raise ConfigError(f"{where}: the driver of {driver}:// is not installed ({exc.name or exc}); "
                          f"use {url.get_backend_name()}:// for the toolkit's driver") from None
