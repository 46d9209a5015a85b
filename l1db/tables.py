"""The published tables as SQLAlchemy columns: the column model every backend shares.

SQL backends create tables from these columns; every backend checks and types
the frames it stores and reads with them (`l1db.frames`), so that a column
reads back with the same dtype whatever the backend. Also the names of a
published table's tables of one time partition each (`period_table`,
Cassandra's ``time_partition_tables``), which the test and benchmark helpers
read too (`l1db.scratch.read_table`).
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from .config import L1dbConfig
from .constants import AP_OBJECT_COLUMNS
from .errors import SchemaError
from .schema_model import ColumnDef, SchemaDef, SchemaFormatError, TableDef, load_schema

__all__ = ["PIXEL_COLUMN", "PUBLISHED_TABLES", "LAST_OBJECT_TABLE", "LAST_OBJECT_KEY", "packaged_schema_path",
           "load_definitions", "last_object_definition", "sql_type", "table_columns", "published_definitions",
           "published_tables", "period_table", "period_of"]

#: Name of the sky-pixel column the SQL backends add to DiaObject and DiaSource.
PIXEL_COLUMN = "pixelId"

#: The published tables every schema holds.
PUBLISHED_TABLES = ("DiaObject", "DiaSource", "DiaForcedSource")

# A published table's table of one time partition (Cassandra's ``time_partition_tables``): the
# table, "_", the partition number ("m" before a negative one: a CQL name holds letters, digits and
# underscores only).
_PERIOD_NAME = re.compile(r"(?P<table>" + "|".join(PUBLISHED_TABLES) + r")_(?P<minus>m?)(?P<number>[0-9]+)")

#: The published latest-version table: a subset of DiaObject's columns for the
#: latest version of each object (``last_object_table`` on SQL, always on
#: Cassandra), defined in the schema file like the others.
LAST_OBJECT_TABLE = "DiaObjectLast"

#: The columns of DiaObjectLast that name a DiaObject version: the full latest
#: rows are read from DiaObject by them (``read_full_objects = 1``).
LAST_OBJECT_KEY = ("diaObjectId", "validityStartMjdTai")


def load_definitions(config: L1dbConfig) -> SchemaDef:
    """The table definitions of ``config.schema_file`` (or the packaged file), checked for the published tables.

    Raises
    ------
    SchemaError
        If the file is missing, unreadable, not a schema file, or lacks a
        published table; the message is one line naming the file.
    """
    path = _schema_path(config)
    where = config.where("l1db", "schema_file")
    try:
        schema_def = load_schema(path)
    except SchemaFormatError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    missing = set(PUBLISHED_TABLES) - set(schema_def.tables)
    if missing:
        raise SchemaError(f"{where}: {path}: the table definitions lack {', '.join(sorted(missing))}")
    return schema_def


def last_object_definition(config: L1dbConfig, schema_def: SchemaDef) -> TableDef:
    """The definition of `LAST_OBJECT_TABLE`, checked against DiaObject's.

    Its rows are projections of DiaObject versions, so each of its columns
    must be a DiaObject column of the same type; it must hold
    `LAST_OBJECT_KEY` (to find the full version in DiaObject) and
    `AP_OBJECT_COLUMNS` (what ``getDiaObjects`` returns with
    ``read_full_objects = 0``).

    Raises
    ------
    SchemaError
        One line naming the file and what is wrong.
    """
    where = config.where("l1db", "schema_file")
    path = _schema_path(config)
    last = schema_def.tables.get(LAST_OBJECT_TABLE)
    if last is None:
        raise SchemaError(f"{where}: {path}: the table definitions lack {LAST_OBJECT_TABLE} (the published "
                          "latest-version table; parse_cat apdb --tables ...,DiaObjectLast)")
    obj = {c.name: c for c in schema_def.tables["DiaObject"].columns}
    names = [c.name for c in last.columns]
    foreign = [c.name for c in last.columns if c.name not in obj or obj[c.name].type != c.type]
    if foreign:
        raise SchemaError(f"{where}: {path}: {LAST_OBJECT_TABLE} columns {foreign} are not DiaObject columns "
                          "of the same type")
    missing = [c for c in dict.fromkeys((*LAST_OBJECT_KEY, *AP_OBJECT_COLUMNS)) if c not in names]
    if missing:
        raise SchemaError(f"{where}: {path}: {LAST_OBJECT_TABLE} lacks the columns {missing} that the reads need")
    return last


def _schema_path(config: L1dbConfig) -> Path:
    return Path(config.schema_file) if config.schema_file else packaged_schema_path()


def packaged_schema_path() -> Path:
    """Path of the packaged table definitions (``schema/apdb-l1.yaml``)."""
    import l1dbproto_schema

    return Path(l1dbproto_schema.__file__).parent / "apdb-l1.yaml"


def sql_type(col: ColumnDef) -> sa.types.TypeEngine:
    """SQLAlchemy type of a column of the schema format."""
    match col.type:
        case "BOOLEAN":
            return sa.Boolean(create_constraint=False)
        case "TINYINT" | "SMALLINT":
            return sa.SmallInteger()
        case "INT":
            return sa.Integer()
        case "BIGINT":
            return sa.BigInteger()
        case "FLOAT":
            return sa.REAL()
        case "DOUBLE":
            return sa.Double()
        case "CHAR":
            return sa.CHAR(col.length)
        case "VARCHAR":
            return sa.VARCHAR(col.length)
        case "TEXT":
            return sa.Text()
    raise SchemaError(f"column {col.name}: no SQL type for {col.type}")


def table_columns(table: TableDef, with_pixel: bool, keys: tuple[str, ...]) -> list[sa.Column]:
    """SQLAlchemy columns of a published table (plus `PIXEL_COLUMN`), ``keys`` not nullable."""
    cols = [
        sa.Column(
            c.name,
            sql_type(c),
            nullable=c.nullable and c.name not in keys,
            primary_key=c.name in keys,
            autoincrement=False,
            # The published default (e.g. trailNdata = 0) lets a writer leave the column out.
            server_default=None if c.default is None else sa.text(
                sa.literal(c.default).compile(compile_kwargs={"literal_binds": True}).string),
            comment=c.description or None,
        )
        for c in table.columns
    ]
    if with_pixel:
        cols.append(
            sa.Column(
                PIXEL_COLUMN,
                sa.BigInteger(),
                nullable=False,
                primary_key=PIXEL_COLUMN in keys,
                autoincrement=False,
                comment="Sky pixel index of (ra, dec) in the configured pixelization.",
            )
        )
    # The primary key's column order is the key's order, not the table's.
    return cols


def published_definitions(schema_def: SchemaDef) -> dict[str, TableDef]:
    """The definitions of DiaObject, DiaSource and DiaForcedSource, keyed as published."""
    return {name: schema_def.tables[name] for name in PUBLISHED_TABLES}


def published_tables(schema_def: SchemaDef) -> dict[str, sa.Table]:
    """DiaObject, DiaSource and DiaForcedSource as they are published (no toolkit column), keyed as published.

    What every backend checks stored frames against and returns from its reads.
    """
    metadata = sa.MetaData()
    return {
        name: sa.Table(name, metadata, *table_columns(definition, False, tuple(definition.primary_key)))
        for name, definition in published_definitions(schema_def).items()
    }


def period_table(table: str, period: int) -> str:
    """Name of published ``table``'s table of time partition ``period`` (dax_apdb's: ``DiaSource_2000``)."""
    return f"{table}_{'m' if period < 0 else ''}{abs(int(period))}"


def period_of(name: str) -> tuple[str, int] | None:
    """(published table, time partition) of a per-period table's name (`period_table`); `None` for any other."""
    found = _PERIOD_NAME.fullmatch(name)
    if found is None:
        return None
    number = int(found["number"])
    return found["table"], -number if found["minus"] else number
