"""ID lists of the SQL statements that select or change rows by diaObjectId."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["ID_CHUNKS", "ID_CHUNK", "id_chunks"]

#: IDs per ``IN (...)`` list, per backend: within each backend's limits (SQLite
#: binds at most 32,766 variables; MySQL statements must fit max_allowed_packet,
#: 16 MB by default) and large enough that a visit's history is one or a few
#: statements: each statement may cost the server a scan when its planner
#: prefers one, so splitting a visit's IDs finely multiplies the work.
ID_CHUNKS = {"sqlite": 10_000, "mysql": 20_000, "postgresql": 50_000}
#: IDs per list for other backends.
ID_CHUNK = 1000


def id_chunks(ids: np.ndarray, dialect: str) -> Iterator[list[int]]:
    """``ids`` in lists of at most the backend's `ID_CHUNKS`."""
    size = ID_CHUNKS.get(dialect, ID_CHUNK)
    for start in range(0, len(ids), size):
        yield ids[start : start + size].tolist()
