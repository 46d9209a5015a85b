"""The L1 schema as CQL tables, laid out for the workload as production lays it out.

From the same table definitions as the SQL backends (``schema/``), every
published column mapped to a CQL type (DiaObjectLast has the columns of its
own published definition, a subset of DiaObject's; the full rows of every
version are in DiaObject):

==================  ==============================  ===================================
table               partition key                   clustering key
==================  ==============================  ===================================
DiaObjectLast       (apdb_part)                     diaObjectId
DiaObject           (apdb_part, apdb_time_part)     diaObjectId, validityStartMjdTai
DiaSource           (apdb_part, apdb_time_part)     diaSourceId
DiaForcedSource     (apdb_part, apdb_time_part)     diaObjectId, visit, detector
==================  ==============================  ===================================

plus ``DiaObjectLastToPartition`` (diaObjectId -> its current spatial
partition, so that an object that moves leaves no stale latest version),
``L1dbVisit`` (one partition: the stored visits, newest first) and
``L1dbMetadata`` (the options the schema was made with).

With ``[l1db] enable_replica`` (`l1db.replica`), also dax_apdb's replica
tables, as its Cassandra schema makes them for a new database (the
sub-chunked tables of replica version 1.1 and later):

======================  =================================================  ==============================
table                   partition key                                      clustering key
======================  =================================================  ==============================
ApdbReplicaChunks       (partition): always 0                              apdb_replica_chunk
DiaObjectChunks2        (apdb_replica_chunk, apdb_replica_subchunk)        diaObjectId, validityStartMjdTai
DiaSourceChunks2        (apdb_replica_chunk, apdb_replica_subchunk)        diaSourceId
DiaForcedSourceChunks2  (apdb_replica_chunk, apdb_replica_subchunk)        diaObjectId, visit, detector
======================  =================================================  ==============================

ApdbReplicaChunks has last_update_time (timestamp), unique_id (uuid) and
has_subchunks (boolean); each chunk table holds the full published rows.

Names are quoted everywhere: CQL folds unquoted names to lower case.
"""

from __future__ import annotations

from ..config import L1dbConfig
from ..errors import SchemaError
from ..replica import CHUNK_COLUMN, CHUNKS_TABLE, SUB_CHUNK_COLUMN
from ..schema_model import ColumnDef, SchemaDef, TableDef
from .partitions import PART_COLUMN, TIME_PART_COLUMN

__all__ = [
    "CQL_TYPES",
    "TABLES",
    "REPLICA_TABLES",
    "SCHEMA_OPTIONS",
    "schema_tables",
    "schema_options",
    "cql_type",
    "quote",
    "table_ddl",
    "published_columns",
    "schema_ddl",
]

#: CQL type of each column type of the schema format. TINYINT is stored as
#: smallint, as on the SQL backends (`l1db.tables.sql_type`): the frames hold it
#: as Int16, and the driver decodes smallint (not tinyint) straight into numpy.
CQL_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INT": "int",
    "BIGINT": "bigint",
    "FLOAT": "float",
    "DOUBLE": "double",
    "CHAR": "text",
    "VARCHAR": "text",
    "TEXT": "text",
}

#: Every table of the Cassandra schema, in creation order.
TABLES = ("DiaObjectLast", "DiaObject", "DiaSource", "DiaForcedSource", "DiaObjectLastToPartition",
          "L1dbVisit", "L1dbMetadata")

#: The replica-chunk table of each published table (``enable_replica``; dax_apdb's Cassandra names).
REPLICA_TABLES = {"DiaObject": "DiaObjectChunks2", "DiaSource": "DiaSourceChunks2",
                  "DiaForcedSource": "DiaForcedSourceChunks2"}

#: ``[cassandra]`` options recorded in L1dbMetadata: rows are placed by them,
#: so a client whose config disagrees would read and write the wrong partitions.
SCHEMA_OPTIONS = ("part_pixelization", "part_pixel_level", "time_partition_days")

#: ``[l1db]`` options recorded in L1dbMetadata (they decide which tables exist),
#: with what a database made before they were recorded holds.
_L1DB_SCHEMA_OPTIONS = {"enable_replica": "0"}


def schema_tables(config: L1dbConfig) -> tuple[str, ...]:
    """Every table of the schema of ``config``, in creation order: `TABLES`, then the replica's."""
    return (*TABLES, CHUNKS_TABLE, *REPLICA_TABLES.values()) if config.enable_replica else TABLES


def schema_options(config: L1dbConfig) -> dict[str, str]:
    """The options the schema of ``config`` is made with, as L1dbMetadata records them."""
    return {**{name: str(config.cassandra[name]) for name in SCHEMA_OPTIONS},
            **{name: str(getattr(config, name)) for name in _L1DB_SCHEMA_OPTIONS}}


def unrecorded_option(name: str) -> str | None:
    """What a database made before option ``name`` was recorded in L1dbMetadata holds for it."""
    return _L1DB_SCHEMA_OPTIONS.get(name)


def quote(name: str) -> str:
    """A CQL identifier, quoted so that its case is kept."""
    return '"' + name.replace('"', '""') + '"'


def cql_type(col: ColumnDef) -> str:
    """CQL type of a column of the schema format."""
    try:
        return CQL_TYPES[col.type]
    except KeyError:
        raise SchemaError(f"column {col.name}: no CQL type for {col.type}") from None


def table_ddl(keyspace: str, name: str, tdef: TableDef, partition: tuple[str, ...],
              clustering: tuple[str, ...]) -> str:
    """``CREATE TABLE`` of a published table with the toolkit's partition columns."""
    columns = [f"{quote(PART_COLUMN)} bigint"]
    if TIME_PART_COLUMN in partition:
        columns.append(f"{quote(TIME_PART_COLUMN)} bigint")
    columns += [f"{quote(c.name)} {cql_type(c)}" for c in tdef.columns]
    key = "(" + ", ".join(quote(p) for p in partition) + ")"
    if clustering:
        key += ", " + ", ".join(quote(c) for c in clustering)
    comment = (tdef.description or name).replace("'", "''")
    return (f"CREATE TABLE {quote(keyspace)}.{quote(name)} ({', '.join(columns)}, PRIMARY KEY ({key})) "
            f"WITH comment = '{comment}'")


def _layouts(schema_def: SchemaDef, last: TableDef) -> list[tuple[str, TableDef, tuple[str, ...], tuple[str, ...]]]:
    """(name, definition, partition key, clustering key) of the tables of published columns."""
    obj = schema_def.tables["DiaObject"]
    src = schema_def.tables["DiaSource"]
    fsrc = schema_def.tables["DiaForcedSource"]
    space_time = (PART_COLUMN, TIME_PART_COLUMN)
    return [
        ("DiaObjectLast", last, (PART_COLUMN,), ("diaObjectId",)),
        ("DiaObject", obj, space_time, tuple(obj.primary_key)),
        ("DiaSource", src, space_time, tuple(src.primary_key)),
        ("DiaForcedSource", fsrc, space_time, tuple(fsrc.primary_key)),
    ]


def _replica_layouts(schema_def: SchemaDef) -> list[tuple[str, TableDef, tuple[str, ...], tuple[str, ...]]]:
    """(name, definition, partition key, clustering key) of the replica's chunk tables."""
    return [(name, schema_def.tables[published], (CHUNK_COLUMN, SUB_CHUNK_COLUMN),
             tuple(schema_def.tables[published].primary_key)) for published, name in REPLICA_TABLES.items()]


def published_columns(schema_def: SchemaDef, last: TableDef, replica: bool = False) -> dict[str, set[str]]:
    """The columns `schema_ddl` gives each table of published columns (partition columns included)."""
    layouts = _layouts(schema_def, last) + (_replica_layouts(schema_def) if replica else [])
    return {name: {*partition, *(c.name for c in tdef.columns)} for name, tdef, partition, _ in layouts}


def _replica_ddl(keyspace: str, schema_def: SchemaDef) -> list[str]:
    """``CREATE TABLE`` of ApdbReplicaChunks and the chunk tables, columns and keys as dax_apdb's."""
    ks = quote(keyspace)
    ddl = [f'CREATE TABLE {ks}.{quote(CHUNKS_TABLE)} ("partition" int, {quote(CHUNK_COLUMN)} bigint, '
           f'"last_update_time" timestamp, "unique_id" uuid, "has_subchunks" boolean, '
           f'PRIMARY KEY (("partition"), {quote(CHUNK_COLUMN)})) '
           f"WITH comment = 'Replica chunks: one row per chunk of visit time (one partition, 0).'"]
    for name, tdef, partition, clustering in _replica_layouts(schema_def):
        columns = [f"{quote(CHUNK_COLUMN)} bigint", f"{quote(SUB_CHUNK_COLUMN)} int",
                   *(f"{quote(c.name)} {cql_type(c)}" for c in tdef.columns)]
        key = "(" + ", ".join(quote(p) for p in partition) + "), " + ", ".join(quote(c) for c in clustering)
        ddl.append(f"CREATE TABLE {ks}.{quote(name)} ({', '.join(columns)}, PRIMARY KEY ({key})) "
                   f"WITH comment = 'Replica chunks of {tdef.name}: the rows each chunk stored.'")
    return ddl


def schema_ddl(keyspace: str, schema_def: SchemaDef, last: TableDef, replica: bool = False) -> list[str]:
    """Every ``CREATE TABLE`` of the schema, in `schema_tables` order; ``last`` is DiaObjectLast's definition."""
    ks = quote(keyspace)
    return [
        *(table_ddl(keyspace, *layout) for layout in _layouts(schema_def, last)),
        f'CREATE TABLE {ks}."DiaObjectLastToPartition" ("diaObjectId" bigint PRIMARY KEY, '
        f'{quote(PART_COLUMN)} bigint) WITH comment = \'Current spatial partition of each object in DiaObjectLast.\'',
        f'CREATE TABLE {ks}."L1dbVisit" (bucket int, "visitId" bigint, tile int, "visitTimeMjdTai" double, '
        f'"nTiles" int, parts set<bigint>, applied boolean, PRIMARY KEY ((bucket), "visitId", tile)) '
        f'WITH CLUSTERING ORDER BY ("visitId" DESC, tile ASC) '
        f"AND comment = 'Stored visits and tiles, newest first (one partition, bucket 0).'",
        f'CREATE TABLE {ks}."L1dbMetadata" (name text PRIMARY KEY, value text) '
        f"WITH comment = 'Options the schema was created with.'",
        *(_replica_ddl(keyspace, schema_def) if replica else []),
    ]
