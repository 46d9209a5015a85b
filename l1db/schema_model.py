"""The toolkit's schema description format: tables, columns, keys, indexes.

This module owns the YAML format of the files in ``schema/``. ``parse_cat``
writes it (from Felis YAML or SQL DDL) and `l1db.sql.schema` reads it to build
SQLAlchemy tables. The format is::

    source:                       # where the definitions came from (provenance)
      format: felis               # felis | sql-ddl
      file: apdb.yaml
      package: lsst-sdm-schemas   # optional
      package_version: 30.2026.4300
      schema_name: ApdbSchema
      schema_version: 10.0.0
    tables:
      - name: DiaObject
        description: ...
        columns:
          - {name: diaObjectId, type: BIGINT, nullable: false, unit: null,
             description: ...}
          - {name: band, type: CHAR, length: 1, nullable: true, ...}
        primary_key: [diaObjectId, validityStartMjdTai]
        indexes:
          - {name: IDX_DiaObject_validityStart, columns: [validityStartMjdTai]}

Column types are one of `COLUMN_TYPES`; CHAR and VARCHAR carry a ``length``.
An optional ``default`` gives the column's default value.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COLUMN_TYPES",
    "ColumnDef",
    "IndexDef",
    "TableDef",
    "SchemaDef",
    "SchemaFormatError",
    "load_schema",
    "dump_schema",
]

#: Column types of the format (the dtype of a frame column of each type is
#: `l1db.frames.column_dtype`'s). No time type: every backend stores and reads
#: exactly these, and the APDB's tables give times as MJD (DOUBLE).
COLUMN_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "CHAR", "VARCHAR", "TEXT")


class SchemaFormatError(ValueError):
    """A schema file or definition that does not follow the format."""


@dataclasses.dataclass(frozen=True)
class ColumnDef:
    """One column of a table."""

    name: str
    type: str
    nullable: bool = True
    length: int | None = None
    unit: str | None = None
    description: str = ""
    default: Any = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            why = " (no backend stores a time type: give times as MJD, DOUBLE)" if self.type == "TIMESTAMP" else ""
            raise SchemaFormatError(
                f"column {self.name!r}: unknown type {self.type!r}{why}; allowed: {', '.join(COLUMN_TYPES)}"
            )
        if self.type in ("CHAR", "VARCHAR") and not self.length:
            raise SchemaFormatError(f"column {self.name!r}: type {self.type} needs a length")


@dataclasses.dataclass(frozen=True)
class IndexDef:
    """A secondary index."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclasses.dataclass(frozen=True)
class TableDef:
    """One table: its columns in order, primary key and secondary indexes."""

    name: str
    columns: tuple[ColumnDef, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[IndexDef, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise SchemaFormatError(f"table {self.name!r}: duplicate column names")
        if not self.primary_key:
            raise SchemaFormatError(f"table {self.name!r} has no primary key")
        for key in (self.primary_key, *(i.columns for i in self.indexes)):
            missing = set(key) - set(names)
            if missing:
                raise SchemaFormatError(
                    f"table {self.name!r}: key or index names unknown columns {sorted(missing)}"
                )

    @property
    def column_names(self) -> list[str]:
        """Names of the columns, in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnDef:
        """Return the column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


@dataclasses.dataclass(frozen=True)
class SchemaDef:
    """A set of tables and a record of where they came from."""

    tables: dict[str, TableDef]
    source: dict[str, Any] = dataclasses.field(default_factory=dict)


def _column_to_dict(col: ColumnDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": col.name, "type": col.type}
    if col.length is not None:
        out["length"] = col.length
    out["nullable"] = col.nullable
    out["unit"] = col.unit
    if col.default is not None:
        out["default"] = col.default
    out["description"] = col.description
    return out


def dump_schema(schema: SchemaDef, path: str | Path, header: str = "") -> None:
    """Write ``schema`` to ``path`` in the format described in this module.

    Parameters
    ----------
    schema : `SchemaDef`
        The tables to write.
    path : `str` or `pathlib.Path`
        Output file.
    header : `str`, optional
        Comment lines written at the top of the file (without ``#``).
    """
    doc = {
        "source": dict(schema.source),
        "tables": [
            {
                "name": t.name,
                "description": t.description,
                "columns": [_column_to_dict(c) for c in t.columns],
                "primary_key": list(t.primary_key),
                "indexes": [
                    {"name": i.name, "columns": list(i.columns), **({"unique": True} if i.unique else {})}
                    for i in t.indexes
                ],
            }
            for t in schema.tables.values()
        ],
    }
    text = "".join(f"# {line}\n" for line in header.splitlines())
    text += yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


def _table_from_dict(data: dict[str, Any], where: str) -> TableDef:
    try:
        name = data["name"]
        columns = tuple(
            ColumnDef(
                name=c["name"],
                type=c["type"],
                nullable=bool(c.get("nullable", True)),
                length=c.get("length"),
                unit=c.get("unit"),
                description=c.get("description") or "",
                default=c.get("default"),
            )
            for c in data["columns"]
        )
        indexes = tuple(
            IndexDef(name=i["name"], columns=tuple(i["columns"]), unique=bool(i.get("unique", False)))
            for i in data.get("indexes") or ()
        )
        return TableDef(
            name=name,
            columns=columns,
            primary_key=tuple(data.get("primary_key") or ()),
            indexes=indexes,
            description=data.get("description") or "",
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise SchemaFormatError(f"{where}: malformed table definition ({type(exc).__name__}: {exc})") from None
    except SchemaFormatError as exc:
        raise SchemaFormatError(f"{where}: {exc}") from None


#: libyaml's parser where PyYAML has it (the same documents, ~10x faster on the schema file), else Python's.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load_yaml(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` with libyaml's parser where available; raises `yaml.YAMLError` likewise."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


def load_schema(path: str | Path) -> SchemaDef:
    """Read a schema file written by `dump_schema` (or by hand in that format).

    Raises
    ------
    SchemaFormatError
        If the file does not follow the format.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaFormatError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SchemaFormatError(f"{path}: is a directory, not a schema file") from None
    except UnicodeDecodeError:
        raise SchemaFormatError(f"{path}: not a text file (not UTF-8), not a schema file") from None
    except OSError as exc:
        raise SchemaFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = safe_load_yaml(text)
    except yaml.YAMLError as exc:
        # Never the YAML library's own message: it quotes the offending line,
        # which may be anything (a config file's database password, say).
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise SchemaFormatError(f"{path}: not valid YAML{where}, not a schema file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), list):
        raise SchemaFormatError(f"{path}: not a schema file (expected a mapping with a 'tables' list)")
    tables = {}
    for i, tdata in enumerate(doc["tables"]):
        table = _table_from_dict(tdata, f"{path}: table #{i}")
        tables[table.name] = table
    return SchemaDef(tables=tables, source=doc.get("source") or {})
