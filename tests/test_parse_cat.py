"""Tests of parse_cat: Felis YAML and SQL DDL to the l1db schema format."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import felis.datamodel
import pytest
import yaml

from l1db.cli.parse_cat import main
from l1db.parse_cat import (
    FELIS_TYPES,
    ParseCatError,
    packaged_apdb_path,
    read_catalog,
    read_felis,
    read_sql_ddl,
)
from l1db.schema_model import SchemaDef, dump_schema, load_schema

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parents[1]
L1_TABLES = ["DiaObject", "DiaSource", "DiaForcedSource"]
# The documented command that generates schema/apdb-l1.yaml (see its header): the published tables
# and the published latest-version table.
GENERATE_ARGV = ["apdb", "--tables", ",".join([*L1_TABLES, "DiaObjectLast"]), "-o", "schema/apdb-l1.yaml"]


@pytest.fixture(scope="module")
def apdb() -> SchemaDef:
    return read_felis(packaged_apdb_path(), tables=L1_TABLES)


@pytest.fixture(scope="module")
def small() -> SchemaDef:
    return read_sql_ddl(DATA / "small_cat.sql")


# ---------------------------------------------------------------- Felis


def test_apdb_tables_columns_and_keys(apdb: SchemaDef) -> None:
    assert list(apdb.tables) == L1_TABLES
    counts = {n: (len(t.columns), sum(not c.nullable for c in t.columns)) for n, t in apdb.tables.items()}
    assert counts == {"DiaObject": (83, 11), "DiaSource": (103, 13), "DiaForcedSource": (14, 8)}
    assert apdb.tables["DiaObject"].primary_key == ("diaObjectId", "validityStartMjdTai")
    assert apdb.tables["DiaSource"].primary_key == ("diaSourceId",)
    assert apdb.tables["DiaForcedSource"].primary_key == ("diaObjectId", "visit", "detector")
    assert [(i.name, i.columns) for i in apdb.tables["DiaSource"].indexes] == [
        ("IDX_DiaSource_visitDetector", ("visit", "detector")),
        ("IDX_DiaSource_diaObjectId", ("diaObjectId",)),
        ("IDX_DiaSource_ssObjectId", ("ssObjectId",)),
    ]
    assert [(i.name, i.columns) for i in apdb.tables["DiaObject"].indexes] == [
        ("IDX_DiaObject_validityStart", ("validityStartMjdTai",))
    ]


def test_apdb_read_as_felis_reads_it(apdb: SchemaDef) -> None:
    """Types, lengths, nullability, keys and indexes are lsst-felis' reading of the file, as dax_apdb's."""
    model = felis.datamodel.Schema.from_uri(str(packaged_apdb_path()), context={"id_generation": True})
    compared = 0
    for ftable in model.tables:
        if ftable.name not in apdb.tables:
            continue
        table = apdb.tables[ftable.name]
        names = {c.id: c.name for c in ftable.columns}
        assert table.column_names == [c.name for c in ftable.columns]
        assert [c.type for c in table.columns] == [FELIS_TYPES[c.datatype] for c in ftable.columns]
        assert [c.nullable for c in table.columns] == [c.nullable for c in ftable.columns]
        assert [c.length for c in table.columns if c.type in ("CHAR", "VARCHAR")] == [
            c.length for c in ftable.columns if c.datatype in ("char", "string", "unicode")
        ]
        pk = [ftable.primary_key] if isinstance(ftable.primary_key, str) else ftable.primary_key
        assert table.primary_key == tuple(names[r] for r in pk)
        assert [(i.name, i.columns) for i in table.indexes] == [
            (i.name, tuple(names[r] for r in i.columns)) for i in ftable.indexes
        ]
        compared += 1
    assert compared == len(L1_TABLES)


def test_apdb_types_units_descriptions(apdb: SchemaDef) -> None:
    obj, src, forced = (apdb.tables[n] for n in L1_TABLES)
    ra = obj.column("ra")
    assert (ra.type, ra.nullable, ra.unit) == ("DOUBLE", False, "deg")
    assert ra.description == "Right ascension coordinate of the position of the object."
    assert (obj.column("raErr").type, obj.column("raErr").unit) == ("FLOAT", "deg")
    assert obj.column("diaObjectId").type == "BIGINT"
    assert obj.column("diaObjectId").unit is None
    assert (src.column("psfFlux").type, src.column("psfFlux").unit) == ("FLOAT", "nJy")
    assert src.column("x").unit == "pixel"
    assert src.column("detector").type == "SMALLINT"
    assert src.column("isNegative").type == "BOOLEAN"
    band = src.column("band")
    assert (band.type, band.length) == ("CHAR", 1)
    assert (src.column("reliabilityVersion").type, src.column("reliabilityVersion").length) == ("VARCHAR", 7)
    assert src.column("trailNdata").default == 0
    assert src.column("trailNdata").nullable is False
    assert forced.column("visit").type == "BIGINT"
    assert forced.description.startswith("Forced-photometry source measurement")


def test_apdb_source_provenance(apdb: SchemaDef) -> None:
    doc = yaml.safe_load(packaged_apdb_path().read_text())
    assert apdb.source == {
        "format": "felis",
        "file": "apdb.yaml",
        "package": "lsst-sdm-schemas",
        "package_version": importlib.metadata.version("lsst-sdm-schemas"),
        "schema_name": "ApdbSchema",
        "schema_version": str(doc["version"]),
    }
    assert apdb.source["schema_version"] == "10.0.0"


def test_felis_copy_outside_package_has_no_package_version(tmp_path: Path) -> None:
    copy = tmp_path / "apdb.yaml"
    shutil.copy(packaged_apdb_path(), copy)
    schema = read_catalog(copy, tables=["DiaForcedSource"])
    assert "package" not in schema.source and "package_version" not in schema.source
    assert schema.source["schema_version"] == "10.0.0"


def test_felis_ivoa_unit_and_unique_constraint() -> None:
    schema = read_felis(packaged_apdb_path(), tables=["SSObject"])
    table = schema.tables["SSObject"]
    assert table.column("MOIDEarth").unit == "AU"  # from ivoa:unit (no fits:tunit)
    assert ("unique_SSObject_designation", ("designation",), True) in [
        (i.name, i.columns, i.unique) for i in table.indexes
    ]


def test_felis_table_without_primary_key_is_an_error() -> None:
    with pytest.raises(ParseCatError, match=r"apdb\.yaml.*'DiaObject_To_Object_Match' has no primary key"):
        read_felis(packaged_apdb_path())


def test_unknown_table_lists_available() -> None:
    with pytest.raises(ParseCatError, match=r"no table\(s\) Foo; available tables: .*DiaObject, DiaSource"):
        read_felis(packaged_apdb_path(), tables=["DiaObject", "Foo"])


def _write_felis(tmp_path: Path, columns: list[dict], primary_key: object, **table: object) -> Path:
    doc = {"name": "tiny", "version": "1.2",
           "tables": [{"name": "T", "columns": columns, "primaryKey": primary_key, **table}]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_felis_ids_string_pk_and_types(tmp_path: Path) -> None:
    columns = [
        {"name": "a", "@id": "#T.a_id", "datatype": "long", "nullable": False},
        {"name": "b", "datatype": "byte", "ivoa:unit": "mag"},
        {"name": "c", "datatype": "unicode", "length": 12},
        {"name": "d", "datatype": "double"},
        {"name": "e", "datatype": "text", "fits:tunit": ""},
        {"name": "f", "datatype": "float", "fits:tunit": "nJy", "value": 1.5},
    ]
    table = read_felis(_write_felis(tmp_path, columns, "#T.a_id")).tables["T"]
    assert table.primary_key == ("a",)
    assert [c.type for c in table.columns] == ["BIGINT", "TINYINT", "VARCHAR", "DOUBLE", "TEXT", "FLOAT"]
    assert (table.column("b").unit, table.column("f").unit) == ("mag", "nJy")
    assert table.column("c").length == 12
    assert table.column("e").unit is None
    assert table.column("f").default == 1.5


def test_felis_errors_name_the_problem(tmp_path: Path) -> None:
    """What Felis accepts but the format cannot hold, or dax_apdb could not resolve."""
    for column in ({"name": "a", "datatype": "binary", "length": 8}, {"name": "a", "datatype": "timestamp"}):
        path = _write_felis(tmp_path, [column], "#T.a")
        message = rf"tiny\.yaml: table 'T', column 'a': Felis datatype '{column['datatype']}' has no column type"
        with pytest.raises(ParseCatError, match=message):
            read_felis(path)
    path = _write_felis(tmp_path, [{"name": "a", "datatype": "long"}], ["#T.zz"])
    with pytest.raises(ParseCatError, match=r"reference '#T.zz' is not the '@id' of a column"):
        read_felis(path)
    # Felis refers to columns by @id; a bare name is no reference (dax_apdb would fail on it too).
    path = _write_felis(tmp_path, [{"name": "a", "datatype": "long"}], ["a"])
    with pytest.raises(ParseCatError, match=r"reference 'a' is not the '@id'"):
        read_felis(path)


#: Felis files that lsst-felis rejects, and a part of its message.
FELIS_REJECTED = [
    pytest.param([{"name": "a", "datatype": "char"}], {},
                 "table 'T', column 'a': Length must be provided for type 'char'", id="char-no-length"),
    pytest.param([{"name": "a", "datatype": "int", "ivoa:unit": "mag", "fits:tunit": "nJy"}], {},
                 "table 'T', column 'a': Column cannot have both FITS and IVOA units", id="two-units"),
    pytest.param([{"name": "a", "datatype": "int", "fits:tunit": "furlongs"}], {},
                 "table 'T', column 'a': Invalid unit: 'furlongs' did not parse", id="bad-unit"),
    pytest.param([{"name": "a", "datatype": "int", "value": "x"}], {},
                 "Default value must be an int for integer type columns", id="bad-default"),
    pytest.param([{"name": "a", "datatype": "int"}, {"name": "a", "datatype": "long"}], {},
                 "table 'T': Column names must be unique", id="duplicate-column"),
    pytest.param([{"name": "a", "datatype": "int", "nullable": "maybe"}], {},
                 "table 'T', column 'a', nullable: Input should be a valid boolean", id="bad-nullable"),
    pytest.param([{"name": "a", "datatype": "decimal"}], {},
                 "Unknown felis type 'decimal'", id="unknown-datatype"),
    pytest.param([{"name": "a", "datatype": "int"}],
                 {"constraints": [{"name": "u", "@type": "Unique", "columns": ["#T.zz"]}]},
                 "Column ID '#T.zz' not found in schema", id="constraint-unknown-column"),
]


@pytest.mark.parametrize("columns, table, message", FELIS_REJECTED)
def test_felis_rejected_file_is_rejected_with_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], columns: list[dict], table: dict, message: str
) -> None:
    path = _write_felis(tmp_path, columns, "#T.a", **table)
    prefix = f"{path}: rejected by Felis (lsst-felis {importlib.metadata.version('lsst-felis')}): "
    for read in (read_felis, read_catalog):
        with pytest.raises(ParseCatError) as info:
            read(path)
        text = str(info.value)
        assert text.startswith(prefix) and message in text and "\n" not in text
    # The command line: that message on one line, exit 1, no traceback.
    assert main([str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"parse_cat: error: {text}\n"


def test_felis_schema_without_name_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nameless.yaml"
    path.write_text(yaml.safe_dump({"tables": [{"name": "T", "columns": [{"name": "a", "datatype": "int"}]}]}))
    with pytest.raises(ParseCatError, match=r"nameless\.yaml: rejected by Felis .*: missing key 'name'"):
        read_felis(path)


# ---------------------------------------------------------------- SQL DDL


def test_sql_tables_types_and_keys(small: SchemaDef) -> None:
    assert list(small.tables) == ["DiaObject", "DiaSource", "Visit"]
    obj, src, visit = small.tables.values()
    assert obj.column_names == [
        "diaObjectId", "validityStart", "ra", "decl", "nDiaSources", "flags", "isVariable"
    ]  # fmt: skip
    assert [c.type for c in obj.columns] == [
        "BIGINT", "DOUBLE", "DOUBLE", "DOUBLE", "INT", "BIGINT", "BOOLEAN"
    ]  # fmt: skip
    assert [c.nullable for c in obj.columns] == [False] * 6 + [True]
    assert obj.primary_key == ("diaObjectId", "validityStart")
    assert [(i.name, i.columns, i.unique) for i in obj.indexes] == [
        ("IDX_DiaObject_validityStart", ("validityStart",), False)
    ]
    assert (obj.column("nDiaSources").default, obj.column("flags").default) == (0, 0)
    assert [c.type for c in src.columns] == [
        "BIGINT", "BIGINT", "DOUBLE", "FLOAT", "FLOAT", "CHAR", "VARCHAR"
    ]  # fmt: skip
    assert (src.column("filterName").length, src.column("comment").length) == (1, 64)
    assert src.column("comment").default == "none"
    assert src.primary_key == ("diaSourceId",)
    assert [(i.name, i.columns) for i in src.indexes] == [("IDX_DiaSource_diaObjectId", ("diaObjectId",))]
    assert [c.type for c in visit.columns] == ["INT", "DOUBLE", "BOOLEAN"]
    # A column-level PRIMARY KEY is the key, and (as in MySQL) not nullable.
    assert visit.primary_key == ("visitId",)
    assert visit.column("visitId").nullable is False
    assert [(i.name, i.columns, i.unique) for i in visit.indexes] == [
        ("UQ_Visit_visitTime", ("visitTime",), True)
    ]
    assert small.source == {"format": "sql-ddl", "file": "small_cat.sql", "dialect": "mysql"}


def test_sql_descriptions_and_units(small: SchemaDef) -> None:
    obj, src, visit = small.tables.values()
    # cat layout: tagged comment lines under each column, <descr> over two lines.
    assert obj.description == "Objects detected on difference images, one row per version."
    assert obj.column("diaObjectId").description == "Unique id."
    assert obj.column("validityStart").description == "Time when validity of this version starts."
    assert (obj.column("ra").description, obj.column("ra").unit) == (
        "RA-coordinate of the position of the object.",
        "deg",
    )
    assert obj.column("diaObjectId").unit is None
    assert obj.column("isVariable").description == "Whether the object varies."
    # COMMENT '...' with a trailing [unit]; table COMMENT=.
    assert src.description == "Sources detected on difference images."
    assert src.column("diaSourceId").description == "Unique id of the source."
    assert (src.column("midPointTai").description, src.column("midPointTai").unit) == (
        "Effective mid-exposure time",
        "d",
    )
    # Trailing '-- text [unit]' comments.
    assert (src.column("psFlux").description, src.column("psFlux").unit) == ("Point source flux", "nJy")
    assert (src.column("psFluxErr").description, src.column("psFluxErr").unit) == (
        "Uncertainty of psFlux.",
        "nJy",
    )
    assert src.column("comment").description == "Free text."
    # A comment after the last column, before ')'.
    assert visit.column("isValid").description == "Whether the visit is usable."
    assert visit.column("visitTime").description == ""


def test_sql_table_subset() -> None:
    schema = read_sql_ddl(DATA / "small_cat.sql", tables=["Visit", "DiaObject"])
    assert list(schema.tables) == ["DiaObject", "Visit"]


def test_sql_table_without_primary_key_is_an_error() -> None:
    message = r"no_pk\.sql: table 'DiaObject_To_Object_Match' has no primary key"
    with pytest.raises(ParseCatError, match=message):
        read_catalog(DATA / "no_pk.sql")


def test_sql_unsupported_type_and_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "dec.sql"
    path.write_text("CREATE TABLE t (a DECIMAL(10, 2) PRIMARY KEY);\n")
    with pytest.raises(ParseCatError, match=r"dec\.sql: table 't', column 'a': unsupported SQL type DECIMAL"):
        read_sql_ddl(path)
    # No time type in the format (no backend stores one): named, with what to use instead.
    for sql_type in ("DATETIME", "TIMESTAMP"):
        path.write_text(f"CREATE TABLE t (a INT PRIMARY KEY, b {sql_type});\n")
        with pytest.raises(ParseCatError,
                           match=rf"table 't', column 'b': unsupported SQL type {sql_type}.*MJD, DOUBLE"):
            read_sql_ddl(path)
    path.write_text("CREATE TABLE (a INT\n")
    with pytest.raises(ParseCatError, match=r"dec\.sql: SQL parse error at line 1, column \d+"):
        read_catalog(path)


# ---------------------------------------------------------------- either / round trip


def test_read_catalog_dispatches(small: SchemaDef, apdb: SchemaDef) -> None:
    assert read_catalog(DATA / "small_cat.sql") == small
    assert read_catalog(packaged_apdb_path(), tables=L1_TABLES) == apdb


@pytest.mark.parametrize(
    "name, content",
    [
        ("schema.json", json.dumps({"name": "x", "columns": [{"name": "a"}]})),
        ("notes.txt", "This is a note about the schema, not a schema.\n"),
        ("empty.txt", ""),
    ],
)
def test_neither_felis_nor_sql(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ParseCatError, match=rf"{name}: neither a Felis YAML schema .* nor SQL DDL"):
        read_catalog(path)


def test_binary_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ParseCatError, match=r"blob\.bin: not a text file"):
        read_catalog(path)
    with pytest.raises(ParseCatError, match=r"missing\.sql: cannot read"):
        read_catalog(tmp_path / "missing.sql")


def test_l1db_format_file_is_recognised() -> None:
    with pytest.raises(ParseCatError, match=r"already in the l1db schema format"):
        read_catalog(REPO / "schema" / "apdb-l1.yaml")


@pytest.mark.parametrize("which", ["apdb", "small"])
def test_round_trip(tmp_path: Path, request: pytest.FixtureRequest, which: str) -> None:
    schema = request.getfixturevalue(which)
    path = tmp_path / "out.yaml"
    dump_schema(schema, path)
    assert load_schema(path) == schema


# ---------------------------------------------------------------- command line


def test_cli_writes_output_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "l1.yaml"
    assert main(["apdb", "--tables", "DiaObject, DiaForcedSource", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "DiaObject: 83 columns (11 non-null), primary key (diaObjectId, validityStartMjdTai), 1 index(es)",
        "DiaForcedSource: 14 columns (8 non-null), primary key (diaObjectId, visit, detector), 1 index(es)",
    ]
    schema = load_schema(out)
    assert list(schema.tables) == ["DiaObject", "DiaForcedSource"]
    assert out.read_text().startswith("# Generated by parse_cat: do not edit: regenerate.\n")


def test_cli_stdout(capsys: pytest.CaptureFixture[str], small: SchemaDef, tmp_path: Path) -> None:
    assert main([str(DATA / "small_cat.sql")]) == 0
    text = capsys.readouterr().out
    assert "# From: small_cat.sql (SQL DDL, mysql dialect)" in text
    path = tmp_path / "copy.yaml"
    path.write_text(text)
    assert load_schema(path) == small


@pytest.mark.parametrize(
    "argv, message",
    [
        ([str(DATA / "no_pk.sql")], "no_pk.sql: table 'DiaObject_To_Object_Match' has no primary key"),
        (["apdb"], "'DiaObject_To_Object_Match' has no primary key"),
        (["apdb", "--tables", "NoSuchTable"], "no table(s) NoSuchTable; available tables:"),
        ([str(REPO / "README.md")], "README.md: neither a Felis YAML schema"),
        ([str(DATA / "nothing_here.sql")], "nothing_here.sql: cannot read"),
        (
            ["apdb", "--tables", "DiaObject", "-o", "/nonexistent-dir/x.yaml"],
            "cannot write /nonexistent-dir/x.yaml",
        ),
    ],
)
def test_cli_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("parse_cat: error: ")
    assert message in lines[0]


@pytest.mark.parametrize("argv", [[], ["apdb", "--tables", ","], ["apdb", "--bogus"]])
def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    assert "usage: parse_cat" in capsys.readouterr().err


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "lsst-sdm-schemas" in capsys.readouterr().out


def test_committed_schema_is_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """schema/apdb-l1.yaml is exactly what its documented command produces now."""
    committed = REPO / "schema" / "apdb-l1.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schema").mkdir()
    assert main(GENERATE_ARGV) == 0
    fresh = (tmp_path / "schema" / "apdb-l1.yaml").read_text()
    assert f"# Command: parse_cat {' '.join(GENERATE_ARGV)}\n" in fresh
    assert committed.read_text() == fresh, (
        "schema/apdb-l1.yaml is stale: regenerate it with: parse_cat " + " ".join(GENERATE_ARGV)
    )
