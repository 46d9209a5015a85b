"""PostgreSQL binary COPY: the pieces shared by the store and the read path.

`l1db.sql.bulk_insert` packs frames into this format for ``COPY ... FROM STDIN``
and `l1db.sql.bulk_read` parses it from ``COPY (SELECT ...) TO STDOUT``. A stream
is a header (11-byte signature, int32 flags, int32 extension length and the
extension), then per row an int16 field count and per field an int32 length
(-1 for NULL) and the value in the type's binary send format (big-endian
numbers, UTF-8 text), then the int16 trailer -1.
"""

from __future__ import annotations

import logging

import sqlalchemy

__all__ = ["PGCOPY_SIGNATURE", "PGCOPY_HEADER", "PGCOPY_TRAILER", "pg_wire_type"]

_LOG = logging.getLogger(__name__)

PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: Header we write: the signature, no flags, no extension.
PGCOPY_HEADER = PGCOPY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
PGCOPY_TRAILER = b"\xff\xff"

# Wire type of a PostgreSQL column (by the type's DDL name) in binary COPY.
_PG_WIRE = {
    "BOOLEAN": "?",
    "SMALLINT": ">i2",
    "INTEGER": ">i4",
    "BIGINT": ">i8",
    "REAL": ">f4",
    "DOUBLE PRECISION": ">f8",
    "FLOAT": ">f8",
}


def pg_wire_type(dialect: sqlalchemy.Dialect, column: sqlalchemy.Column) -> str:
    """Binary COPY format of ``column``: a numpy dtype string or ``"text"``.

    Raises
    ------
    TypeError
        For column types without a binary format here.
    """
    ddl = column.type.compile(dialect=dialect).upper()
    base = ddl.split("(")[0].strip()
    if base in ("CHAR", "VARCHAR", "TEXT", "CHARACTER", "CHARACTER VARYING"):
        return "text"
    if base == "FLOAT" and "(" in ddl:
        return ">f4" if int(ddl.split("(")[1].rstrip(")")) <= 24 else ">f8"
    try:
        return _PG_WIRE[base]
    except KeyError:
        raise TypeError(f"{column.table.name}.{column.name}: no binary COPY format for {ddl}") from None

