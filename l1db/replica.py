"""Replica chunks: the copy of every store that production keeps for the Prompt Products Database.

With ``[l1db] enable_replica = 1`` every store also writes the visit's rows
into replica-chunk tables, as lsst/dax_apdb does with its own
``enable_replica`` (followed: dax_apdb w.2026.34, commit 56c1996,
``ApdbReplicaChunks`` and the ``Dia*Chunks`` tables of
``sql/apdbSqlSchema.py`` and ``cassandra/apdbCassandraSchema.py``). This
module holds what both backends share: the names, the chunk of a visit and
the sub-chunk of a write. The tables themselves are each backend's
(`l1db.sql.schema`, `l1db.cassandra.schema`).

A chunk is a window of ``replica_chunk_seconds`` (600 by default, as in
dax_apdb) of the visit time: its id is the visit's Unix time (TAI seconds,
astropy's ``unix_tai``) rounded down to a multiple of the window, as
dax_apdb's ``ReplicaChunk.make_replica_chunk`` computes it. Every store
upserts the chunk's row of ``ApdbReplicaChunks`` (its last update time and a
new unique id) and writes its rows under the chunk id.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid

from .constants import mjd_tai_time

__all__ = [
    "DAX_APDB_VERSION",
    "CHUNKS_TABLE",
    "CHUNK_COLUMN",
    "SUB_CHUNK_COLUMN",
    "ReplicaChunk",
    "replica_chunk",
    "sub_chunk",
]

#: The dax_apdb version whose replica tables the toolkit writes.
DAX_APDB_VERSION = "w.2026.34 (commit 56c1996)"

#: The table of chunks: one row per chunk, upserted by every store of the chunk.
CHUNKS_TABLE = "ApdbReplicaChunks"

#: The chunk id column of every replica table.
CHUNK_COLUMN = "apdb_replica_chunk"

#: The sub-chunk column of the Cassandra chunk tables (the second part of their partition key).
SUB_CHUNK_COLUMN = "apdb_replica_subchunk"


@dataclasses.dataclass(frozen=True)
class ReplicaChunk:
    """The chunk of one store.

    Attributes
    ----------
    id : `int`
        Start of the chunk's window, Unix seconds (TAI), a multiple of the window length.
    last_update_time : `datetime.datetime`
        The visit time as dax_apdb writes it (its TAI Unix seconds, labelled UTC).
    unique_id : `uuid.UUID`
        New for every store, so that a reader can tell that a chunk changed.
    """

    id: int
    last_update_time: datetime.datetime
    unique_id: uuid.UUID

    @property
    def last_update_ms(self) -> int:
        """`last_update_time` in milliseconds since the epoch (Cassandra's timestamp)."""
        return int(self.last_update_time.timestamp() * 1000)


def replica_chunk(visit_mjd: float, chunk_seconds: int) -> ReplicaChunk:
    """The chunk of a store at ``visit_mjd`` (MJD TAI), windows of ``chunk_seconds``."""
    unix_tai = float(mjd_tai_time(visit_mjd).unix_tai)
    seconds = (int(unix_tai) // chunk_seconds) * chunk_seconds
    when = datetime.datetime.fromtimestamp(unix_tai, tz=datetime.UTC)
    return ReplicaChunk(id=seconds, last_update_time=when, unique_id=uuid.uuid4())


def sub_chunk(count: int, table: str, visit_id: int | None, tile: int) -> int:
    """The sub-chunk (0 to ``count`` - 1) a store writes ``table``'s rows to (Cassandra).

    dax_apdb draws it with ``random.randrange(replica_sub_chunk_count)`` per
    table and store, so that concurrent clients write different partitions.
    The same uniform draw here is seeded by the visit, tile and table: a store
    that is retried (Cassandra's stores are idempotent, not atomic) writes the
    same partitions again, not a second copy of its rows in another one.
    Without a visit id (``storeDiaSources`` alone) it is drawn as dax_apdb does.
    """
    if visit_id is None:
        return random.randrange(count)
    return random.Random(f"{visit_id}:{tile}:{table}").randrange(count)
