"""Convert a catalog schema description into the toolkit's schema format.

Two inputs are understood, both turned into a `l1db.schema_model.SchemaDef`:

Felis YAML (`read_felis`)
    The data model files of the survey, e.g. ``apdb.yaml`` in the PyPI
    package ``lsst-sdm-schemas``, read and validated by the schema language's
    own library, lsst-felis, as the production APDB (dax_apdb) reads them: a
    file Felis rejects is an error with Felis' message; columns are referred
    to by their Felis ``@id`` (generated as ``#Table.column`` where absent).
    Column order, types, lengths, nullability, primary keys, indexes and
    ``Unique`` constraints (as unique indexes) are kept; the unit comes from
    ``fits:tunit`` or else ``ivoa:unit``; ``value`` becomes the column
    default. Foreign keys and database-specific overrides such as
    ``mysql:datatype`` are not part of the format and are dropped.

SQL DDL (`read_sql_ddl`)
    Files of ``CREATE TABLE`` statements (MySQL dialect by default), the
    format of the old ``cat`` package that the original prototype read. The
    SQL is parsed with sqlglot. Supported: column types (see `SQL_TYPES`),
    ``NOT NULL``/``NULL``, literal ``DEFAULT`` values, ``PRIMARY KEY``
    (table or column level), ``INDEX``/``KEY``/``UNIQUE`` inside the table,
    separate ``CREATE [UNIQUE] INDEX`` statements and ``COMMENT '...'`` on
    columns and tables. Other statements (``DROP``, ``SET``, ...) are
    ignored. Descriptions and units come from:

    * ``COMMENT '...'``, which wins over ``--`` comments for the description;
    * ``--`` (or ``/* */``) comments that *follow* a column, on its line or on
      the lines after it up to the next column: ``col INT, -- text`` and the
      ``cat`` layout of comment lines under each column. Comment lines placed
      *above* a column are therefore read as belonging to the column before
      it; comments between the table name and its first column describe the
      table. The ``cat`` tags ``<descr>...</descr>`` (may span lines) and
      ``<unit>...</unit>`` are understood; ``<ucd>`` is ignored;
    * a unit in brackets at the end of a description (``'RA [deg]'``) is
      taken as the unit and removed from the description, unless a
      ``<unit>`` tag gave one.

    Primary key columns are made non-nullable, as MySQL does.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.resources
import logging
import re
from pathlib import Path
from typing import Any

import felis.datamodel
import pydantic
import sqlglot
import sqlglot.errors
import yaml
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import Token, TokenType

from .schema_model import ColumnDef, IndexDef, SchemaDef, SchemaFormatError, TableDef, safe_load_yaml

__all__ = [
    "FELIS_TYPES",
    "SQL_TYPES",
    "ParseCatError",
    "packaged_apdb_path",
    "read_felis",
    "read_sql_ddl",
    "read_catalog",
    "generated_header",
]

_LOG = logging.getLogger(__name__)

_FELIS = felis.datamodel.DataType

#: Felis datatype -> column type of the format (Felis' ``binary`` has none).
FELIS_TYPES: dict[felis.datamodel.DataType, str] = {
    _FELIS.boolean: "BOOLEAN",
    _FELIS.byte: "TINYINT",
    _FELIS.short: "SMALLINT",
    _FELIS.int: "INT",
    _FELIS.long: "BIGINT",
    _FELIS.float: "FLOAT",
    _FELIS.double: "DOUBLE",
    _FELIS.char: "CHAR",
    _FELIS.string: "VARCHAR",
    _FELIS.unicode: "VARCHAR",
    _FELIS.text: "TEXT",
}

_FELIS_VERSION = importlib.metadata.version("lsst-felis")

_DT = exp.DataType.Type

#: sqlglot data type -> column type of the format. Unsigned integers are
#: widened to the next signed type that holds their range (the format has no
#: unsigned types); BIGINT UNSIGNED stays BIGINT. sqlglot reads MySQL's REAL
#: as FLOAT. TINYINT(1) and BIT(1) are BOOLEAN (MySQL's own spelling of it).
SQL_TYPES: dict[exp.DType, str] = {
    _DT.BOOLEAN: "BOOLEAN",
    _DT.TINYINT: "TINYINT",
    _DT.UTINYINT: "SMALLINT",
    _DT.SMALLINT: "SMALLINT",
    _DT.USMALLINT: "INT",
    _DT.MEDIUMINT: "INT",
    _DT.UMEDIUMINT: "INT",
    _DT.INT: "INT",
    _DT.UINT: "BIGINT",
    _DT.BIGINT: "BIGINT",
    _DT.UBIGINT: "BIGINT",
    _DT.FLOAT: "FLOAT",
    _DT.DOUBLE: "DOUBLE",
    _DT.UDOUBLE: "DOUBLE",
    _DT.CHAR: "CHAR",
    _DT.NCHAR: "CHAR",
    _DT.VARCHAR: "VARCHAR",
    _DT.NVARCHAR: "VARCHAR",
    _DT.TEXT: "TEXT",
    _DT.TINYTEXT: "TEXT",
    _DT.MEDIUMTEXT: "TEXT",
    _DT.LONGTEXT: "TEXT",
}

_SDM_PACKAGE = "lsst-sdm-schemas"
_SDM_MODULE = "lsst.sdm.schemas"


class ParseCatError(ValueError):
    """An input that cannot be converted; the message names the file."""


# --------------------------------------------------------------------------
# Felis YAML


def packaged_apdb_path() -> Path:
    """Return the path of ``apdb.yaml`` in the installed ``lsst-sdm-schemas``.

    Raises
    ------
    ParseCatError
        If the package is not installed or has no ``apdb.yaml``.
    """
    try:
        path = Path(str(importlib.resources.files(_SDM_MODULE) / "apdb.yaml"))
    except ModuleNotFoundError as exc:
        raise ParseCatError(f"package {_SDM_PACKAGE} is not installed (pip install {_SDM_PACKAGE})") from exc
    if not path.is_file():
        raise ParseCatError(f"package {_SDM_PACKAGE} has no apdb.yaml (looked for {path})")
    return path


def _sdm_package_version(path: Path) -> str | None:
    """Version of lsst-sdm-schemas if ``path`` lies inside it, else None."""
    try:
        root = Path(str(importlib.resources.files(_SDM_MODULE))).resolve()
        version = importlib.metadata.version(_SDM_PACKAGE)
    except (ModuleNotFoundError, importlib.metadata.PackageNotFoundError):
        return None
    return version if path.resolve().is_relative_to(root) else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParseCatError(f"{path}: not a text file (not UTF-8): {exc.reason}") from exc
    except OSError as exc:
        raise ParseCatError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ParseCatError:
    """One-line error for a YAML syntax error (PyYAML's own message spans lines)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return ParseCatError(f"{path}: not valid YAML{where}: {problem}")


def _select(names: list[str], tables: list[str] | tuple[str, ...] | None, path: Path) -> list[str]:
    """Names of the tables to convert, in file order; checks ``tables``."""
    if tables is None:
        return names
    unknown = [t for t in tables if t not in names]
    if unknown:
        raise ParseCatError(
            f"{path}: no table(s) {', '.join(unknown)}; available tables: {', '.join(names)}"
        )
    wanted = set(tables)
    return [n for n in names if n in wanted]


def _make_table(path: Path, **kwargs: Any) -> TableDef:
    """Build a `TableDef`, reporting format violations against the input file."""
    if not kwargs["primary_key"]:
        raise ParseCatError(
            f"{path}: table {kwargs['name']!r} has no primary key, which the l1db schema format "
            "requires; convert only tables that have one (tables=..., parse_cat --tables)"
        )
    try:
        return TableDef(**kwargs)
    except SchemaFormatError as exc:
        raise ParseCatError(f"{path}: {exc}") from exc


def _felis_where(doc: Any, loc: tuple[Any, ...]) -> str:
    """Name the table and column (or index) of a Felis error location.

    pydantic locates an error by path (``('tables', 3, 'columns', 12)``);
    the names read better than the indices.
    """
    kinds = {"tables": "table", "columns": "column", "indexes": "index", "constraints": "constraint"}
    parts: list[str] = []
    node = doc
    for parent, key in zip((None, *loc), loc):
        if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(f"{kinds.get(parent, parent)} {name!r}" if name else f"{parent} #{key}")
        elif isinstance(node, dict) and key in node:
            node = node[key]
            if key not in kinds:
                parts.append(str(key))
        else:
            if key not in kinds:
                parts.append(str(key))
            node = None
    return ", ".join(parts)


def _felis_model(doc: Any, path: Path) -> felis.datamodel.Schema:
    """Validate a Felis document with lsst-felis, as the survey's APDB does.

    Raises
    ------
    ParseCatError
        With Felis' own message (the first problem, and how many more), on one line.
    """
    try:
        # id_generation: columns without '@id' get '#Table.column', as in dax_apdb.
        return felis.datamodel.Schema.model_validate(doc, context={"id_generation": True})
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        where = _felis_where(doc, tuple(first["loc"]))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        problem = f"{where}: {message}" if where else message
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # Some of Felis' checks run before pydantic's and raise plain errors.
        more = ""
        problem = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
    raise ParseCatError(f"{path}: rejected by Felis (lsst-felis {_FELIS_VERSION}): {' '.join(problem.split())}{more}")


def _felis_table(table: felis.datamodel.Table, path: Path) -> TableDef:
    """Convert one validated Felis table; column references are Felis IDs, as dax_apdb reads them."""
    by_id: dict[str, str] = {}
    columns = []
    for col in table.columns:
        where = f"{path}: table {table.name!r}, column {col.name!r}"
        ftype = FELIS_TYPES.get(col.datatype)
        if ftype is None:
            raise ParseCatError(
                f"{where}: Felis datatype {col.datatype.value!r} has no column type in the l1db schema "
                f"format; supported: {', '.join(FELIS_TYPES)}"
            )
        try:
            columns.append(
                ColumnDef(
                    name=col.name,
                    type=ftype,
                    nullable=col.nullable,
                    length=col.length if ftype in ("CHAR", "VARCHAR") else None,
                    unit=col.fits_tunit or col.ivoa_unit or None,
                    description=(col.description or "").strip(),
                    default=col.value,
                )
            )
        except SchemaFormatError as exc:
            raise ParseCatError(f"{path}: table {table.name!r}: {exc}") from exc
        by_id[col.id] = col.name

    def refs(value: str | list[str] | None) -> tuple[str, ...]:
        ids = [value] if isinstance(value, str) else list(value or ())
        unknown = [r for r in ids if r not in by_id]
        if unknown:
            raise ParseCatError(
                f"{path}: table {table.name!r}: reference {unknown[0]!r} is not the '@id' of a column "
                "of the table (Felis refers to columns by '@id', e.g. '#Table.column')"
            )
        return tuple(by_id[r] for r in ids)

    indexes = []
    for index in table.indexes:
        if not index.columns:
            raise ParseCatError(
                f"{path}: table {table.name!r}: index {index.name!r} has no columns "
                "(expression indexes are not supported)"
            )
        indexes.append(IndexDef(name=index.name, columns=refs(index.columns)))
    for cons in table.constraints:
        if isinstance(cons, felis.datamodel.UniqueConstraint):
            indexes.append(IndexDef(name=cons.name, columns=refs(cons.columns), unique=True))
    return _make_table(
        path,
        name=table.name,
        columns=tuple(columns),
        primary_key=refs(table.primary_key),
        indexes=tuple(indexes),
        description=(table.description or "").strip(),
    )


def _is_felis(doc: Any) -> bool:
    """Whether a YAML document claims to be Felis (a 'tables' list of columns with a 'datatype').

    Only the claim: lsst-felis decides whether it is valid Felis.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), list):
        return False
    return all(
        isinstance(t, dict) and all(isinstance(c, dict) and "datatype" in c for c in t.get("columns") or ())
        for t in doc["tables"]
    )


def _felis_from_doc(doc: Any, path: Path, tables: list[str] | tuple[str, ...] | None) -> SchemaDef:
    if not _is_felis(doc):
        raise ParseCatError(f"{path}: not a Felis schema (expected a mapping with a 'tables' list)")
    model = _felis_model(doc, path)
    by_name = {t.name: t for t in model.tables}
    selected = _select(list(by_name), tables, path)
    converted = {name: _felis_table(by_name[name], path) for name in selected}
    source: dict[str, Any] = {"format": "felis", "file": path.name}
    version = _sdm_package_version(path)
    if version is not None:
        source["package"] = _SDM_PACKAGE
        source["package_version"] = version
    source["schema_name"] = model.name
    # Felis allows a version mapping ({current: ..., compatible: [...]}).
    schema_version = model.version
    if isinstance(schema_version, felis.datamodel.SchemaVersion):
        schema_version = schema_version.current
    source["schema_version"] = None if schema_version is None else str(schema_version)
    return SchemaDef(tables=converted, source=source)


def read_felis(path: str | Path, tables: list[str] | tuple[str, ...] | None = None) -> SchemaDef:
    """Read a Felis YAML schema.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        The Felis file, e.g. `packaged_apdb_path()`.
    tables : `list` of `str`, optional
        Names of the tables to convert (default: all); they keep the file's
        order.

    Returns
    -------
    schema : `l1db.schema_model.SchemaDef`
        The tables; ``source`` records the format, file name, schema name and
        version, and the ``lsst-sdm-schemas`` package version when the file
        belongs to that package.

    Raises
    ------
    ParseCatError
        If the file is not Felis YAML, lsst-felis rejects it (the message is
        Felis' own), it uses a datatype the format lacks (``binary``) or a
        reference that is no column's ``@id``, a requested table does not
        exist, or a converted table has no primary key.
    """
    path = Path(path)
    try:
        doc = safe_load_yaml(_read_text(path))
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from exc
    return _felis_from_doc(doc, path, tables)


# --------------------------------------------------------------------------
# SQL DDL

_DESCR_TAG = re.compile(r"<descr>(.*?)(?:</descr>|$)", re.DOTALL)
_UNIT_TAG = re.compile(r"<unit>(.*?)</unit>", re.DOTALL)
_UCD_TAG = re.compile(r"<ucd>.*?</ucd>", re.DOTALL)
_TRAILING_UNIT = re.compile(r"\s*\[([^\[\]]+)\]\s*$")
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: [^>]*>")


@dataclasses.dataclass
class _Notes:
    """Comment text gathered for one table element (or the table itself)."""

    lines: list[str] = dataclasses.field(default_factory=list)

    def description_and_unit(self) -> tuple[str, str | None]:
        text = "\n".join(line.strip() for line in self.lines)
        unit_match = _UNIT_TAG.search(text)
        unit = unit_match.group(1).strip() if unit_match else None
        descr_match = _DESCR_TAG.search(text)
        if descr_match:
            descr = descr_match.group(1)
        else:
            descr = _UCD_TAG.sub("", _UNIT_TAG.sub("", text))
        return " ".join(descr.split()), unit or None


def _split_unit(description: str, unit: str | None) -> tuple[str, str | None]:
    """Take a trailing ``[unit]`` off ``description`` unless ``unit`` is set."""
    match = _TRAILING_UNIT.search(description)
    if match and unit is None:
        return description[: match.start()], match.group(1).strip()
    return description, unit


def _table_comment_notes(tokens: list[Token]) -> tuple[str, _Notes, list[_Notes]] | None:
    """Assign the comments of one CREATE TABLE statement's tokens.

    Returns the table name, the table's notes and one `_Notes` per element
    (column, key or index) of the parenthesised body, or None if the tokens
    are not a CREATE TABLE with a body. sqlglot's tokenizer attaches a
    comment to the token before it when on the same line, else to the token
    after it; the comments following an element's start up to the next
    element's start are that element's (see the module docstring).
    """
    types = [t.token_type for t in tokens]
    if len(tokens) < 3 or types[0] != TokenType.CREATE or TokenType.TABLE not in types[:4]:
        return None
    try:
        open_at = types.index(TokenType.L_PAREN)
    except ValueError:
        return None
    name = tokens[open_at - 1].text
    table = _Notes()
    for tok in tokens[1 : open_at + 1]:
        table.lines += tok.comments
    elements = [_Notes()]
    depth = 1
    element_start = True
    for tok in tokens[open_at + 1 :]:
        if element_start:
            (elements[-2] if len(elements) > 1 else table).lines += tok.comments
            element_start = False
            if tok.token_type == TokenType.L_PAREN:
                depth += 1
            continue
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                elements[-1].lines += tok.comments
                break
        elements[-1].lines += tok.comments
        if tok.token_type == TokenType.COMMA and depth == 1:
            elements.append(_Notes())
            element_start = True
    return name, table, elements


def _split_statements(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(tok)
    return [c for c in chunks if c]


def _name_of(node: exp.Expression, where: str) -> str:
    """Column name of an index/key element (``col``, ``col DESC``, ``col(10)``)."""
    column = node if isinstance(node, (exp.Column, exp.Identifier)) else node.find(exp.Column, exp.Identifier)
    if column is None:
        raise ParseCatError(f"{where}: no column name in key or index element {node.sql()!r}")
    return column.name


def _sql_literal(node: exp.Expression, where: str) -> Any:
    """Python value of a literal DEFAULT; None for NULL or a non-literal."""
    negate = isinstance(node, exp.Neg)
    if negate:
        node = node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if not isinstance(node, exp.Literal):
        _LOG.warning("%s: DEFAULT %s is not a literal; ignored", where, node.sql())
        return None
    if node.is_string:
        return node.this
    value = float(node.this) if any(ch in node.this for ch in ".eE") else int(node.this)
    return -value if negate else value


def _sql_column_type(kind: exp.DataType, where: str) -> tuple[str, int | None]:
    params = [p.this for p in kind.expressions if isinstance(p, exp.DataTypeParam)]
    size = int(params[0].this) if params and isinstance(params[0], exp.Literal) else None
    dtype = kind.this
    if dtype == _DT.BIT and size in (None, 1) or dtype == _DT.TINYINT and size == 1:
        return "BOOLEAN", None
    if dtype == _DT.FLOAT and size is not None and size > 24:
        # MySQL: FLOAT(p) with p > 24 is a DOUBLE.
        return "DOUBLE", None
    if dtype not in SQL_TYPES:
        raise ParseCatError(
            f"{where}: unsupported SQL type {kind.sql(dialect='mysql')}; supported: BOOLEAN, BIT(1), "
            "TINYINT, SMALLINT, MEDIUMINT, INT/INTEGER, BIGINT (also UNSIGNED), FLOAT, REAL, DOUBLE, "
            "CHAR(n), VARCHAR(n), TEXT (no time types: the format gives times as MJD, DOUBLE)"
        )
    ftype = SQL_TYPES[dtype]
    if ftype == "CHAR":
        return ftype, size or 1
    if ftype == "VARCHAR":
        if not size:
            raise ParseCatError(f"{where}: VARCHAR needs a length")
        return ftype, size
    return ftype, None


@dataclasses.dataclass
class _SqlTable:
    """A table being assembled from CREATE TABLE and CREATE INDEX statements."""

    name: str
    columns: list[ColumnDef]
    primary_key: list[str]
    indexes: list[IndexDef]
    description: str


def _sql_table(create: exp.Create, notes: tuple[str, _Notes, list[_Notes]] | None, path: Path) -> _SqlTable:
    schema = create.this
    tname = schema.this.name
    elements = schema.expressions
    table_notes = _Notes()
    element_notes: list[_Notes] = [_Notes() for _ in elements]
    if notes is not None:
        if len(notes[2]) == len(elements):
            table_notes, element_notes = notes[1], notes[2]
        else:
            _LOG.warning("%s: table %s: cannot match '--' comments to columns; ignored", path, tname)

    columns: list[ColumnDef] = []
    primary_key: list[str] = []
    indexes: list[IndexDef] = []
    for element, enotes in zip(elements, element_notes):
        where = f"{path}: table {tname!r}"
        if isinstance(element, exp.ColumnDef):
            cname = element.name
            where += f", column {cname!r}"
            if element.args.get("kind") is None:
                raise ParseCatError(f"{where}: no type")
            ctype, length = _sql_column_type(element.args["kind"], where)
            nullable, default, comment = True, None, None
            for cons in element.constraints:
                kind = cons.kind
                if isinstance(kind, exp.NotNullColumnConstraint):
                    nullable = bool(kind.args.get("allow_null"))
                elif isinstance(kind, exp.DefaultColumnConstraint):
                    default = _sql_literal(kind.this, where)
                elif isinstance(kind, exp.CommentColumnConstraint):
                    comment = kind.this.name
                elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
                    primary_key.append(cname)
                elif isinstance(kind, exp.UniqueColumnConstraint):
                    indexes.append(IndexDef(name=f"UQ_{tname}_{cname}", columns=(cname,), unique=True))
            descr, unit = enotes.description_and_unit()
            if comment is not None:
                descr = " ".join(comment.split())
            descr, unit = _split_unit(descr, unit)
            try:
                columns.append(
                    ColumnDef(
                        name=cname,
                        type=ctype,
                        nullable=nullable,
                        length=length,
                        unit=unit,
                        description=descr,
                        default=default,
                    )
                )
            except SchemaFormatError as exc:
                raise ParseCatError(f"{path}: table {tname!r}: {exc}") from exc
        elif isinstance(element, exp.PrimaryKey):
            primary_key.extend(_name_of(e, where) for e in element.expressions)
        elif isinstance(element, (exp.IndexColumnConstraint, exp.UniqueColumnConstraint)):
            unique = isinstance(element, exp.UniqueColumnConstraint)
            body = element.this if unique else element
            if unique and not isinstance(body, exp.Schema):
                continue
            if not unique and element.args.get("kind"):
                _LOG.warning("%s: %s index ignored", where, element.args["kind"])
                continue
            cols = tuple(_name_of(e, where) for e in body.expressions)
            iname = body.this.name if body.this else f"{'UQ' if unique else 'IDX'}_{tname}_{'_'.join(cols)}"
            indexes.append(IndexDef(name=iname, columns=cols, unique=unique))
        else:
            _LOG.info("%s: ignored table element %s", where, element.sql(dialect="mysql")[:60])

    description, _ = table_notes.description_and_unit()
    properties = create.args.get("properties")
    for prop in properties.expressions if properties else ():
        if isinstance(prop, exp.SchemaCommentProperty):
            description = " ".join(prop.this.name.split())
    return _SqlTable(tname, columns, primary_key, indexes, description)


def _parse_sql(text: str, path: Path, dialect: str) -> list[exp.Expr]:
    try:
        return [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        where = f" at line {err['line']}, column {err['col']}" if "line" in err else ""
        # sqlglot prints whole Token objects; keep only their text.
        descr = _TOKEN_REPR.sub(r"'\1'", str(err.get("description", exc)))
        raise ParseCatError(f"{path}: SQL parse error{where}: {descr}") from exc
    except sqlglot.errors.SqlglotError as exc:
        # sqlglot quotes the offending SQL, line breaks included: keep the message on one line.
        raise ParseCatError(f"{path}: SQL error: {' '.join(str(exc).split())}") from exc


def _sql_from_statements(
    statements: list[exp.Expr],
    text: str,
    path: Path,
    dialect: str,
    tables: list[str] | tuple[str, ...] | None,
) -> SchemaDef:
    creates = [s for s in statements if isinstance(s, exp.Create) and s.kind == "TABLE"]
    bad = [s for s in creates if not isinstance(s.this, exp.Schema)]
    if bad:
        raise ParseCatError(
            f"{path}: CREATE TABLE {bad[0].this.sql()} has no column list (LIKE/AS are not supported)"
        )
    for s in statements:
        if isinstance(s, exp.Command) and s.this.upper() == "CREATE":
            raise ParseCatError(f"{path}: statement not understood: {s.sql()[:80]}")
    # Comments come from the token stream: the parser drops some of them.
    chunks = _split_statements(Dialect.get_or_raise(dialect).tokenize(text))
    notes_by_table = {n[0]: n for n in map(_table_comment_notes, chunks) if n is not None}
    built: dict[str, _SqlTable] = {}
    for create in creates:
        table = _sql_table(create, notes_by_table.get(create.this.this.name), path)
        if table.name in built:
            raise ParseCatError(f"{path}: table {table.name!r} is defined twice")
        built[table.name] = table
    for s in statements:
        if isinstance(s, exp.Create) and s.kind == "INDEX":
            index = s.this
            tname = index.args["table"].name
            if tname not in built:
                raise ParseCatError(f"{path}: CREATE INDEX {index.name} on unknown table {tname!r}")
            where = f"{path}: CREATE INDEX {index.name}"
            cols = tuple(_name_of(c, where) for c in index.args["params"].args.get("columns") or ())
            unique = bool(s.args.get("unique"))
            built[tname].indexes.append(IndexDef(name=index.name, columns=cols, unique=unique))
        elif not (isinstance(s, exp.Create) and s.kind == "TABLE"):
            _LOG.debug("%s: ignored statement %s", path, s.sql(dialect=dialect)[:60])

    selected = _select(list(built), tables, path)
    converted = {}
    for name in selected:
        t = built[name]
        pk = set(t.primary_key)
        # MySQL makes primary key columns NOT NULL whatever the declaration says.
        columns = tuple(dataclasses.replace(c, nullable=False) if c.name in pk else c for c in t.columns)
        converted[name] = _make_table(
            path,
            name=name,
            columns=columns,
            primary_key=tuple(t.primary_key),
            indexes=tuple(t.indexes),
            description=t.description,
        )
    return SchemaDef(tables=converted, source={"format": "sql-ddl", "file": path.name, "dialect": dialect})


def read_sql_ddl(
    path: str | Path, tables: list[str] | tuple[str, ...] | None = None, dialect: str = "mysql"
) -> SchemaDef:
    """Read a file of SQL ``CREATE TABLE`` statements.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        The SQL file.
    tables : `list` of `str`, optional
        Names of the tables to convert (default: all), kept in file order.
    dialect : `str`, optional
        sqlglot dialect of the SQL (default ``mysql``, as in the ``cat``
        package).

    Returns
    -------
    schema : `l1db.schema_model.SchemaDef`
        The tables; ``source`` records the format (``sql-ddl``), file name
        and dialect. See the module docstring for what is read from comments.

    Raises
    ------
    ParseCatError
        If the SQL does not parse, holds no ``CREATE TABLE``, uses an
        unsupported type, a requested table does not exist, or a converted
        table has no primary key.
    """
    path = Path(path)
    text = _read_text(path)
    statements = _parse_sql(text, path, dialect)
    if not any(isinstance(s, exp.Create) and s.kind == "TABLE" for s in statements):
        raise ParseCatError(f"{path}: no CREATE TABLE statement found")
    return _sql_from_statements(statements, text, path, dialect, tables)


# --------------------------------------------------------------------------
# Either


def read_catalog(path: str | Path, tables: list[str] | tuple[str, ...] | None = None) -> SchemaDef:
    """Read a Felis YAML or SQL DDL (MySQL) schema, whichever ``path`` holds.

    The content decides, not the file name: a YAML mapping with a
    ``tables`` list of Felis columns is Felis; text that parses as SQL with
    at least one ``CREATE TABLE`` is SQL DDL.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        Input file.
    tables : `list` of `str`, optional
        Names of the tables to convert (default: all).

    Returns
    -------
    schema : `l1db.schema_model.SchemaDef`
        The converted tables (see `read_felis` and `read_sql_ddl`).

    Raises
    ------
    ParseCatError
        If the file is neither kind, or the conversion fails.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        doc = safe_load_yaml(text)
    except yaml.YAMLError as exc:
        if path.suffix.lower() in (".yaml", ".yml"):
            raise _yaml_error(path, exc) from exc
        doc = None
    if _is_felis(doc):
        return _felis_from_doc(doc, path, tables)
    if isinstance(doc, dict) and isinstance(doc.get("tables"), list):
        raise ParseCatError(
            f"{path}: a YAML schema, but not Felis (columns need a 'datatype'); "
            "is it already in the l1db schema format?"
        )
    try:
        statements = _parse_sql(text, path, "mysql")
    except ParseCatError as exc:
        sql_problem = str(exc).removeprefix(f"{path}: ")
    else:
        if any(isinstance(s, exp.Create) and s.kind == "TABLE" for s in statements):
            return _sql_from_statements(statements, text, path, "mysql", tables)
        sql_problem = "no CREATE TABLE statement"
    if path.suffix.lower() == ".sql":
        raise ParseCatError(f"{path}: {sql_problem}")
    raise ParseCatError(
        f"{path}: neither a Felis YAML schema (a mapping with a 'tables' list) "
        f"nor SQL DDL ({sql_problem})"
    )


def generated_header(schema: SchemaDef, command: str) -> str:
    """Header lines for a file written by parse_cat (pass to ``dump_schema``).

    Parameters
    ----------
    schema : `l1db.schema_model.SchemaDef`
        The converted schema; its ``source`` names the input.
    command : `str`
        The command line that produced the file.

    Returns
    -------
    header : `str`
        Lines without ``#``; deterministic (no date), so that regenerating an
        unchanged input gives an identical file.
    """
    src = schema.source
    if src.get("format") == "felis":
        origin = f"{src.get('file')}"
        if src.get("package"):
            origin += f" of {src['package']} {src['package_version']}"
        origin += f" (Felis schema {src.get('schema_name')}, version {src.get('schema_version')})"
    else:
        origin = f"{src.get('file')} (SQL DDL, {src.get('dialect')} dialect)"
    return (
        "Generated by parse_cat: do not edit: regenerate.\n"
        f"Command: {command}\n"
        f"From: {origin}\n"
    )
