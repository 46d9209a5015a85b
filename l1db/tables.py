"""The published tables as SQLAlchemy columns: the column model every backend shares.

SQL backends create tables from these columns; every backend checks and types
the frames it stores and reads with them (`l1db.frames`), so that a column
reads back with the same dtype whatever the backend.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from .config import L1dbConfig
from .errors import SchemaError
from .schema_model import ColumnDef, SchemaDef, SchemaFormatError, TableDef, load_schema

__all__ = ["PIXEL_COLUMN", "PUBLISHED_TABLES", "packaged_schema_path", "load_definitions", "sql_type",
           "table_columns", "published_definitions", "published_tables"]

#: Name of the sky-pixel column the SQL backends add to DiaObject and DiaSource.
PIXEL_COLUMN = "pixelId"

#: The published tables every schema holds.
PUBLISHED_TABLES = ("DiaObject", "DiaSource", "DiaForcedSource")


def load_definitions(config: L1dbConfig) -> SchemaDef:
    """The table definitions of ``config.schema_file`` (or the packaged file), checked for the published tables.

    Raises
    ------
    SchemaError
        If the file is missing, unreadable, not a schema file, or lacks a
        published table; the message is one line naming the file.
    """
    path = Path(config.schema_file) if config.schema_file else packaged_schema_path()
    where = config.where("l1db", "schema_file")
    try:
        schema_def = load_schema(path)
    except SchemaFormatError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    missing = set(PUBLISHED_TABLES) - set(schema_def.tables)
    if missing:
        raise SchemaError(f"{where}: {path}: the table definitions lack {', '.join(sorted(missing))}")
    return schema_def


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
