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

With ``[cassandra] time_partition_tables = 1`` (dax_apdb's
``time_partition_tables``), DiaObject, DiaSource and DiaForcedSource are one
table per time partition instead, named with the partition's number
(`period_table`: ``DiaSource_2000`` holds MJD [60000, 60030) with 30-day
partitions) and partitioned by ``apdb_part`` alone; they are made when a
store is about to need them (`period_ddl`, ``IF NOT EXISTS``), not here.

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

from collections.abc import Iterable

from ..config import L1dbConfig
from ..errors import SchemaError
from ..replica import CHUNK_COLUMN, CHUNKS_TABLE, SUB_CHUNK_COLUMN
from ..schema_model import ColumnDef, SchemaDef, TableDef
from ..tables import PUBLISHED_TABLES, period_of, period_table
from .partitions import PART_COLUMN, TIME_PART_COLUMN

__all__ = [
    "CQL_TYPES",
    "TABLES",
    "REPLICA_TABLES",
    "SCHEMA_OPTIONS",
    "PERIOD_TABLES",
    "DDL_TIMEOUT",
    "logical_tables",
    "schema_tables",
    "keyspace_schema_tables",
    "period_tables",
    "period_ddl",
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
SCHEMA_OPTIONS = ("part_pixelization", "part_pixel_level", "time_partition_days", "time_partition_tables")

#: ``[l1db]`` options recorded in L1dbMetadata (they decide which tables exist).
_L1DB_SCHEMA_OPTIONS = ("enable_replica",)

#: What a database made before an option was recorded in L1dbMetadata holds for it.
_UNRECORDED = {"time_partition_tables": "0", "enable_replica": "0"}

#: Timeout of a schema change (the nodes agree on it before it returns), seconds.
DDL_TIMEOUT = 120.0

#: The tables kept as one table per time partition with ``time_partition_tables``
#: (dax_apdb's time-partitioned tables: the published ones), each named by
#: `l1db.tables.period_table`.
PERIOD_TABLES = PUBLISHED_TABLES


def period_tables(config: L1dbConfig) -> bool:
    """Whether the schema of ``config`` has one table per time partition (``time_partition_tables``)."""
    return bool(config.cassandra["time_partition_tables"])


def logical_tables(config: L1dbConfig) -> tuple[str, ...]:
    """The tables of the schema of ``config`` as the L1 API names them: `TABLES`, then the replica's.

    With ``time_partition_tables``, each of `PERIOD_TABLES` stands for its per-period tables.
    """
    return (*TABLES, CHUNKS_TABLE, *REPLICA_TABLES.values()) if config.enable_replica else TABLES


def schema_tables(config: L1dbConfig) -> tuple[str, ...]:
    """Every table the schema of ``config`` is made with, in creation order (`logical_tables`).

    With ``time_partition_tables`` the `PERIOD_TABLES` are not among them:
    theirs are made per time partition (`period_ddl`).
    """
    if not period_tables(config):
        return logical_tables(config)
    return tuple(t for t in logical_tables(config) if t not in PERIOD_TABLES)


def keyspace_schema_tables(config: L1dbConfig, existing: Iterable[str]) -> list[str]:
    """The tables of the schema of ``config`` (`schema_tables`) and, with ``time_partition_tables``, every
    per-period table among ``existing`` (the keyspace's tables), by table and period: what a count, a
    save or a description of the schema goes through."""
    tables = list(schema_tables(config))
    if period_tables(config):
        found = (period_of(name) for name in existing)
        periods = sorted((PERIOD_TABLES.index(p[0]), p[1]) for p in found if p is not None)
        tables += [period_table(PERIOD_TABLES[index], period) for index, period in periods]
    return tables


def schema_options(config: L1dbConfig) -> dict[str, str]:
    """The options the schema of ``config`` is made with, as L1dbMetadata records them."""
    return {**{name: str(config.cassandra[name]) for name in SCHEMA_OPTIONS},
            **{name: str(getattr(config, name)) for name in _L1DB_SCHEMA_OPTIONS}}


def unrecorded_option(name: str) -> str | None:
    """What a database made before option ``name`` was recorded in L1dbMetadata holds for it."""
    return _UNRECORDED.get(name)


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
              clustering: tuple[str, ...], if_not_exists: bool = False) -> str:
    """``CREATE TABLE`` of a published table with the toolkit's partition columns."""
    columns = [f"{quote(PART_COLUMN)} bigint"]
    if TIME_PART_COLUMN in partition:
        columns.append(f"{quote(TIME_PART_COLUMN)} bigint")
    columns += [f"{quote(c.name)} {cql_type(c)}" for c in tdef.columns]
    key = "(" + ", ".join(quote(p) for p in partition) + ")"
    if clustering:
        key += ", " + ", ".join(quote(c) for c in clustering)
    comment = (tdef.description or name).replace("'", "''")
    create = "CREATE TABLE IF NOT EXISTS" if if_not_exists else "CREATE TABLE"
    return (f"{create} {quote(keyspace)}.{quote(name)} ({', '.join(columns)}, PRIMARY KEY ({key})) "
            f"WITH comment = '{comment}'")


def _history_layout(schema_def: SchemaDef, table: str, periods: bool,
                    ) -> tuple[str, TableDef, tuple[str, ...], tuple[str, ...]]:
    """(name, definition, partition key, clustering key) of a history table (`PERIOD_TABLES`).

    With ``periods`` (``time_partition_tables``) each per-period table is keyed
    by sky pixel alone: its name holds the time partition.
    """
    tdef = schema_def.tables[table]
    partition = (PART_COLUMN,) if periods else (PART_COLUMN, TIME_PART_COLUMN)
    return table, tdef, partition, tuple(tdef.primary_key)


def _layouts(schema_def: SchemaDef, last: TableDef, periods: bool = False,
             ) -> list[tuple[str, TableDef, tuple[str, ...], tuple[str, ...]]]:
    """(name, definition, partition key, clustering key) of the tables of published columns."""
    return [("DiaObjectLast", last, (PART_COLUMN,), ("diaObjectId",)),
            *(_history_layout(schema_def, table, periods) for table in PERIOD_TABLES)]


def _replica_layouts(schema_def: SchemaDef) -> list[tuple[str, TableDef, tuple[str, ...], tuple[str, ...]]]:
    """(name, definition, partition key, clustering key) of the replica's chunk tables."""
    return [(name, schema_def.tables[published], (CHUNK_COLUMN, SUB_CHUNK_COLUMN),
             tuple(schema_def.tables[published].primary_key)) for published, name in REPLICA_TABLES.items()]


def published_columns(schema_def: SchemaDef, last: TableDef, replica: bool = False,
                      periods: bool = False) -> dict[str, set[str]]:
    """The columns `schema_ddl` (or `period_ddl`) gives each table of published columns (partition columns included).

    With ``periods``, those of `PERIOD_TABLES` are those of each of their per-period tables.
    """
    layouts = _layouts(schema_def, last, periods) + (_replica_layouts(schema_def) if replica else [])
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


def schema_ddl(keyspace: str, schema_def: SchemaDef, last: TableDef, replica: bool = False,
               periods: bool = False) -> list[str]:
    """Every ``CREATE TABLE`` of the schema, in `schema_tables` order; ``last`` is DiaObjectLast's definition.

    With ``periods`` (``time_partition_tables``), none of `PERIOD_TABLES`: see `period_ddl`.
    """
    ks = quote(keyspace)
    return [
        *(table_ddl(keyspace, *layout) for layout in _layouts(schema_def, last, periods)
          if not (periods and layout[0] in PERIOD_TABLES)),
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


def period_ddl(keyspace: str, schema_def: SchemaDef, table: str, period: int) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of ``table``'s table of time partition ``period`` (`PERIOD_TABLES`).

    ``IF NOT EXISTS``: two clients that reach a new period at once both make
    it, and the second finds it made.
    """
    name, tdef, partition, clustering = _history_layout(schema_def, table, periods=True)
    return table_ddl(keyspace, period_table(name, period), tdef, partition, clustering, if_not_exists=True)
