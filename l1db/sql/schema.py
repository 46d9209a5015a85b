"""The L1 schema as SQLAlchemy tables, shaped by the configured indexing options.

This is one of the two places where indexing options act (the other is the
query code of the reads and stores, `l1db.sql.reads` and `l1db.sql.writes`). From the published table definitions in
``schema/`` it builds:

- ``DiaObject``, ``DiaSource``, ``DiaForcedSource``: every published column;
  DiaObject and DiaSource get the toolkit's ``pixelId`` column (the sky pixel
  index of ra/dec under the configured pixelization).
- the DiaObject key: ``baseline`` and ``last_object_table`` key it by
  (diaObjectId, validityStartMjdTai); ``pix_id_iov`` by (pixelId, diaObjectId,
  validityStartMjdTai).
- ``DiaObjectLast`` (``last_object_table``): the latest version of each object,
  with the columns its published definition gives (a subset of DiaObject's:
  what association reads), keyed by diaObjectId (so that replacing a version
  is a key lookup) with an index on pixelId for region reads. The full latest
  rows stay in DiaObject, found by (diaObjectId, validityStartMjdTai).
- ``DiaObjectNightly`` (``dia_object_nightly = 1``): same columns, no key and no
  index, so that inserts during the night are cheap; merged by ``dailyJob()``.
- ``L1dbVisit``: one row per stored visit and tile, for resuming runs.
- ``L1dbMetadata``: the options the schema was made with, checked when a client
  connects so that a config cannot silently disagree with the database.
- replica chunks (``enable_replica``, `l1db.replica`), as dax_apdb's SQL
  schema makes them: ``ApdbReplicaChunks`` (apdb_replica_chunk key,
  last_update_time, unique_id) and ``DiaObjectChunks``, ``DiaSourceChunks``,
  ``DiaForcedSourceChunks``: apdb_replica_chunk and the published key of
  their table, keyed by that key, indexed on apdb_replica_chunk, with foreign
  keys (ON DELETE/UPDATE CASCADE) to ApdbReplicaChunks and to their table.
  The latter only where the table is keyed by its published key: not
  DiaObject with ``pix_id_iov``, nor the time-partitioned tables (their key
  holds pixelId or the time column, so the published key is not unique there).
- time partitions (``history_partition_days``, PostgreSQL): DiaSource,
  DiaForcedSource and, with ``last_object_table``, DiaObject are partitioned
  by RANGE on their time column (`l1db.sql.partitions`); a primary key of a
  partitioned table must hold the partition column, so DiaSource's key becomes
  (diaSourceId, midpointMjdTai) and DiaForcedSource's (diaObjectId, visit,
  detector, midpointMjdTai) (DiaObject's already holds validityStartMjdTai).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from ..config import L1dbConfig
from ..errors import SchemaError
from ..replica import CHUNK_COLUMN, CHUNKS_TABLE
from ..schema_model import SchemaDef, TableDef
from ..tables import (
    LAST_OBJECT_TABLE,
    PIXEL_COLUMN,
    last_object_definition,
    load_definitions,
    published_definitions,
    sql_type,
    table_columns,
)
from .partitions import PARTITION_COLUMNS, TimePartitions

__all__ = [
    "L1Schema",
    "PIXEL_COLUMN",
    "TOOLKIT_TABLES",
    "REPLICA_TABLES",
    "ALL_TABLES",
]

_LOG = logging.getLogger(__name__)

#: Tables the toolkit adds to the published ones, depending on options.
TOOLKIT_TABLES = ("DiaObjectLast", "DiaObjectNightly", "L1dbVisit", "L1dbMetadata")
#: The replica-chunk table of each published table (``enable_replica``; dax_apdb's SQL names).
REPLICA_TABLES = {"DiaObject": "DiaObjectChunks", "DiaSource": "DiaSourceChunks",
                  "DiaForcedSource": "DiaForcedSourceChunks"}
#: Every table any configuration can create (what ``--drop`` removes).
ALL_TABLES = ("DiaObject", "DiaSource", "DiaForcedSource", *TOOLKIT_TABLES, CHUNKS_TABLE,
              *REPLICA_TABLES.values())

#: Options recorded in L1dbMetadata: they change the schema, so a client whose
#: config disagrees with them would read or write the wrong thing.
SCHEMA_OPTIONS = ("dia_object_index", "dia_object_nightly", "pixelization", "effective_pixel_level",
                  "history_partition_days", "enable_replica")
#: What a database made before an option was recorded holds for it.
_UNRECORDED = {"history_partition_days": "0", "enable_replica": "0"}



def _key(name: str, keys: tuple[str, ...]) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*keys, name=f"PK_{name}")


class L1Schema:
    """SQLAlchemy tables of the L1 database for one configuration.

    Parameters
    ----------
    config : `L1dbConfig`
        Validated configuration; its indexing options decide the tables.
    schema_def : `SchemaDef`, optional
        Table definitions; default: ``config.schema_file`` or the packaged file.

    Attributes
    ----------
    tables : `dict` [`str`, `sqlalchemy.Table`]
        The tables this configuration uses, by name.
    partitions : `TimePartitions` or `None`
        The time partitions (``history_partition_days``), `None` without.
    definitions : `dict` [`str`, `TableDef`]
        The published definitions of DiaObject, DiaSource and DiaForcedSource.
    """

    def __init__(self, config: L1dbConfig, schema_def: SchemaDef | None = None) -> None:
        self.config = config
        if schema_def is None:
            schema_def = load_definitions(config)
        self.schema_def = schema_def
        self.definitions = published_definitions(schema_def)
        self.metadata = sa.MetaData()
        self.tables: dict[str, sa.Table] = {}
        self.partitions: TimePartitions | None = None
        if config.history_partition_days:
            # DiaObject only where it is the history table: elsewhere it is also the read path of the
            # latest versions, which time partitions would scatter (and retention would drop).
            history = ("DiaObject",) if config.dia_object_index == "last_object_table" else ()
            self.partitions = TimePartitions(config.history_partition_days, (*history, "DiaSource", "DiaForcedSource"))
        self._build()

    # -- construction -------------------------------------------------------

    def _table(
        self,
        name: str,
        tdef: TableDef,
        keys: tuple[str, ...],
        indexes: list[tuple[str, tuple[str, ...]]],
        with_pixel: bool,
    ) -> sa.Table:
        kwargs: dict[str, Any] = {}
        if self.partitions is not None and name in self.partitions.tables:
            # The key of a partitioned table must hold the partition column (the toolkit's
            # indexes are not unique, so they need not).
            column = PARTITION_COLUMNS[name]
            keys = keys if column in keys else (*keys, column)
            kwargs["postgresql_partition_by"] = f'RANGE ("{column}")'
        args: list[sa.schema.SchemaItem] = list(table_columns(tdef, with_pixel, keys))
        if keys:
            args.append(_key(name, keys))
        table = sa.Table(name, self.metadata, *args, comment=tdef.description or None, **kwargs)
        for index_name, columns in indexes:
            sa.Index(index_name, *(table.c[c] for c in columns))
        self.tables[name] = table
        return table

    def _published_indexes(self, tdef: TableDef) -> list[tuple[str, tuple[str, ...]]]:
        return [(i.name, i.columns) for i in tdef.indexes]

    def _build(self) -> None:
        cfg = self.config
        obj = self.definitions["DiaObject"]
        src = self.definitions["DiaSource"]
        fsrc = self.definitions["DiaForcedSource"]

        obj_indexes = self._published_indexes(obj)
        if cfg.dia_object_index == "pix_id_iov":
            obj_key = (PIXEL_COLUMN, *obj.primary_key)
            # Closing the previous version's validity looks objects up by id.
            obj_indexes.append(("IDX_DiaObject_diaObjectId", ("diaObjectId",)))
        else:
            obj_key = tuple(obj.primary_key)
            if cfg.dia_object_index == "baseline":
                obj_indexes.append(("IDX_DiaObject_pixelId", (PIXEL_COLUMN,)))
        self._table("DiaObject", obj, obj_key, obj_indexes, with_pixel=True)

        if cfg.dia_object_index == "last_object_table":
            # The published definition (a subset of DiaObject's columns), as production makes it.
            self._table(
                LAST_OBJECT_TABLE,
                last_object_definition(cfg, self.schema_def),
                ("diaObjectId",),
                [("IDX_DiaObjectLast_pixelId", (PIXEL_COLUMN,))],
                with_pixel=True,
            )
        if cfg.dia_object_nightly:
            self._table("DiaObjectNightly", obj, (), [], with_pixel=True)

        # Always indexed, so that by-oid and by-fov history reads can be compared
        # on the same database.
        src_indexes = self._published_indexes(src) + [("IDX_DiaSource_pixelId", (PIXEL_COLUMN,))]
        self._table("DiaSource", src, tuple(src.primary_key), src_indexes, with_pixel=True)
        self._table("DiaForcedSource", fsrc, tuple(fsrc.primary_key), self._published_indexes(fsrc),
                    with_pixel=False)

        self.tables["L1dbVisit"] = sa.Table(
            "L1dbVisit",
            self.metadata,
            sa.Column("visitId", sa.BigInteger(), primary_key=True, autoincrement=False),
            sa.Column("tile", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("visitTimeMjdTai", sa.Double(), nullable=False),
            sa.Column("nTiles", sa.Integer(), nullable=False, comment="Number of tiles the visit was split into."),
            comment="One row per stored visit and tile (written in the visit's store transaction).",
        )
        self.tables["L1dbMetadata"] = sa.Table(
            "L1dbMetadata",
            self.metadata,
            sa.Column("name", sa.VARCHAR(64), primary_key=True),
            sa.Column("value", sa.VARCHAR(255), nullable=False),
            comment="Options the schema was created with.",
        )
        if cfg.enable_replica:
            self._build_replica()

    def _build_replica(self) -> None:
        """ApdbReplicaChunks and the chunk table of each published table (see the module docstring)."""
        chunks = sa.Table(
            CHUNKS_TABLE,
            self.metadata,
            sa.Column(CHUNK_COLUMN, sa.BigInteger(), primary_key=True, autoincrement=False),
            sa.Column("last_update_time", sa.TIMESTAMP(timezone=True), nullable=False),
            # PostgreSQL's uuid, CHAR(32) of hex digits elsewhere (dax_apdb's GUID type).
            sa.Column("unique_id", sa.Uuid(), nullable=False),
            comment="Replica chunks: one row per chunk of visit time, upserted by every store of the chunk.",
        )
        self.tables[CHUNKS_TABLE] = chunks
        for published, name in REPLICA_TABLES.items():
            tdef = self.definitions[published]
            base = self.tables[published]
            keys = tuple(tdef.primary_key)
            args: list[sa.schema.SchemaItem] = [
                sa.Column(CHUNK_COLUMN, sa.BigInteger(), nullable=False),
                *(sa.Column(k, sql_type(tdef.column(k)), nullable=False, autoincrement=False) for k in keys),
                _key(name, keys),
                sa.ForeignKeyConstraint([CHUNK_COLUMN], [chunks.c[CHUNK_COLUMN]], name=f"{name}_fk_{CHUNKS_TABLE}",
                                        onupdate="CASCADE", ondelete="CASCADE"),
            ]
            if {c.name for c in base.primary_key.columns} == set(keys):
                args.append(sa.ForeignKeyConstraint(keys, [base.c[k] for k in keys], name=f"{name}_fk_{published}",
                                                    onupdate="CASCADE", ondelete="CASCADE"))
            table = sa.Table(name, self.metadata, *args, comment=f"Replica chunks of {published}: the keys of "
                             "the rows each chunk stored.")
            sa.Index(f"{name}_apdb_replica_chunk_idx", table.c[CHUNK_COLUMN])
            self.tables[name] = table

    # -- helpers --------------------------------------------------------------

    @property
    def object_read_table(self) -> sa.Table:
        """The table region reads of DiaObjects go to."""
        return self.tables.get("DiaObjectLast", self.tables["DiaObject"])

    def schema_options(self) -> dict[str, str]:
        """The schema-shaping options of the configuration, as strings."""
        return {name: str(getattr(self.config, name)) for name in SCHEMA_OPTIONS}

    # -- database operations ---------------------------------------------------

    def existing_tables(self, engine: sa.Engine) -> list[str]:
        """Toolkit tables (of any configuration) that exist in the database."""
        names = set(sa.inspect(engine).get_table_names())
        return [t for t in ALL_TABLES if t in names]

    def create(self, engine: sa.Engine, drop: bool = False, first_visit_mjd: float | None = None) -> list[str]:
        """Create the tables; with ``drop``, first drop every toolkit table.

        Without ``drop``, existing toolkit tables are an error and nothing is
        touched. Returns the names of the tables created. With time
        partitions and ``first_visit_mjd`` (MJD TAI, given by the caller: the
        tool that runs the visits knows when they start), also the initial
        span of partitions: those of that time and of the next
        ``history_partition_days``. Without it none are made here: every
        store makes the partitions of its rows and of the days after its visit.

        Raises
        ------
        SchemaError
            If tables exist and ``drop`` is false.
        """
        existing = self.existing_tables(engine)
        if existing and not drop:
            raise SchemaError(
                f"tables already exist: {', '.join(existing)}; use --drop to re-create them"
            )
        with engine.begin() as conn:
            if existing:
                drop_meta = sa.MetaData()
                drop_meta.reflect(conn, only=existing)
                drop_meta.drop_all(conn)
                _LOG.info("dropped %s", ", ".join(existing))
            self.metadata.create_all(conn)
            conn.execute(
                self.tables["L1dbMetadata"].insert(),
                [{"name": k, "value": v} for k, v in self.schema_options().items()],
            )
        if self.partitions is not None and first_visit_mjd is not None:
            horizon = self.partitions.horizon(first_visit_mjd)
            self.partitions.ensure(engine, {t: horizon for t in self.partitions.tables})
        return list(self.tables)

    def check(self, conn: sa.Connection) -> None:
        """Verify that the database holds this schema (tables and options).

        Raises
        ------
        SchemaError
            If tables are missing, the schema was made with other options or
            a table's columns are not those of the table definitions.
        """
        inspector = sa.inspect(conn)
        names = set(inspector.get_table_names())
        if "L1dbMetadata" not in names:
            raise SchemaError("the L1 schema does not exist in this database; run create_l1_schema first")
        meta = self.tables["L1dbMetadata"]
        stored = dict(conn.execute(sa.select(meta.c.name, meta.c.value)).all())
        wanted = self.schema_options()
        stored = {k: stored.get(k, _UNRECORDED.get(k)) for k in wanted}
        diffs = [f"{k}: database {stored[k]!r}, config {v!r}" for k, v in wanted.items() if stored[k] != v]
        if diffs:
            raise SchemaError(
                "the schema was created with other options (" + "; ".join(diffs)
                + "); re-create it with create_l1_schema --drop or fix the config"
            )
        missing = [t for t in self.tables if t not in names]
        if missing:
            raise SchemaError(
                f"the L1 schema is incomplete (missing tables: {', '.join(missing)}); "
                "re-create it with create_l1_schema --drop"
            )
        for name, table in self.tables.items():
            # E.g. a DiaObjectLast of full rows, made before it took its published columns.
            stored_columns = {c["name"] for c in inspector.get_columns(name)}
            if stored_columns != set(table.columns.keys()):
                raise SchemaError(
                    f"table {name} has {len(stored_columns)} columns, the table definitions give it "
                    f"{len(table.columns)}; re-create the schema with create_l1_schema --drop"
                )
