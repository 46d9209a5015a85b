"""Rows in CQL's wire format, a column at a time, sent as BATCH messages without a Python object per value.

The driver binds a batch value by value: a ``BoundStatement`` per row, a
``bytes`` per value, then ``BatchMessage.send_body`` writes each value's
length and bytes in a loop. At tens of thousands of rows of ~100 columns a
visit that was half of the store's client CPU. Here the statements of a
batch, as they appear in the BATCH message body of the native protocol (v4
and v5: ``[byte kind=1][short id][short n][value]...`` per statement, a value
being ``[int length][bytes]``, length -1 for NULL and -2 for unset), are made
for all rows at once into one byte buffer (`encode_rows`: numpy a column at a
time, then one numba pass writing the rows); a batch
is a slice of it (`EncodedBatch`), framed by the driver's own message code
(`EncodedBatchMessage`) and sent through the driver's request path
(`send`), which keeps its connections, routing, retries and timeouts.

`send` uses two methods of ``cassandra.cluster.Session`` that are not part of
the driver's public API (``_create_response_future``, ``_on_request``: the
two halves of ``Session.execute_async``); setup.py pins the driver, and
tests/test_l1db_cassandra.py checks the bytes against the driver's encoding.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
from cassandra.cluster import EXEC_PROFILE_DEFAULT, ResponseFuture, Session
from cassandra.protocol import BatchMessage, write_short
from cassandra.query import BatchStatement, BatchType, PreparedStatement

__all__ = ["NULL", "UNSET", "EncodedRows", "EncodedBatch", "EncodedBatchMessage", "encode_rows", "send", "warm_up",
           "wire_bytes"]

#: The length a value of the wire format gives for NULL (written: a tombstone) and for unset (nothing written).
NULL, UNSET = -1, -2

#: Big-endian wire format of each fixed-width column kind (`l1db.frames.column_kind`).
_WIRE = {"bool": ">u1", "int8": ">i1", "int16": ">i2", "int32": ">i4", "int64": ">i8",
         "float32": ">f4", "float64": ">f8"}


def wire_bytes(kind: str) -> int:
    """Bytes a value of column ``kind`` takes on the wire, its 4-byte length included (text: a guess)."""
    return 4 + (12 if kind == "str" else np.dtype(_WIRE[kind]).itemsize)


@dataclasses.dataclass(frozen=True)
class EncodedRows:
    """Rows of one prepared statement, each as a statement of a BATCH message body, one after another.

    Row ``i`` is ``buffer[offsets[i]:offsets[i + 1]]``: the statement's
    ``prefix_bytes`` (kind, query id, number of values), then its values.
    """

    buffer: np.ndarray
    offsets: np.ndarray
    prefix_bytes: int

    def size(self, first: int, last: int) -> int:
        """Bytes of rows ``first`` to ``last`` (excluded)."""
        return int(self.offsets[last] - self.offsets[first])

    def body(self, first: int, last: int) -> memoryview:
        """Rows ``first`` to ``last`` (excluded), as the statements of one BATCH message."""
        return self.buffer[self.offsets[first]:self.offsets[last]].data

    def value(self, row: int, column: int) -> bytes | None:
        """One serialized value (what the driver's ``bind`` makes); `None` where NULL or unset."""
        start = int(self.offsets[row]) + self.prefix_bytes
        for _ in range(column + 1):
            length = int(self.buffer[start:start + 4].view(">i4")[0])
            start += 4 + max(length, 0)
        return None if length < 0 else self.buffer[start - length:start].tobytes()


@numba.njit(cache=True, nogil=True)
def _fill_rows(buffer: np.ndarray, offsets: np.ndarray, prefix: np.ndarray, lengths: np.ndarray, fixed: np.ndarray,
               fixed_at: np.ndarray, text_at: np.ndarray, text_starts: np.ndarray) -> None:  # pragma: no cover
    """Write each row's statement: prefix, then each value's big-endian int32 length and bytes.

    A column's bytes come from ``fixed[row, fixed_at[j]:]`` (fixed-width
    values); a text column (``fixed_at[j] < 0``) has its place noted in
    ``text_starts[row, text_at[j]]``, its bytes written afterwards.
    """
    n, columns = lengths.shape
    for row in range(n):
        pos = offsets[row]
        for k in range(len(prefix)):
            buffer[pos + k] = prefix[k]
        pos += len(prefix)
        for j in range(columns):
            length = lengths[row, j]
            word = np.uint32(length & 0xFFFFFFFF)
            buffer[pos] = (word >> 24) & 0xFF
            buffer[pos + 1] = (word >> 16) & 0xFF
            buffer[pos + 2] = (word >> 8) & 0xFF
            buffer[pos + 3] = word & 0xFF
            pos += 4
            if length > 0:
                at = fixed_at[j]
                if at >= 0:
                    for k in range(length):
                        buffer[pos + k] = fixed[row, at + k]
                else:
                    text_starts[row, text_at[j]] = pos
                pos += length


def _text_column(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of the present values of a text column, one after another, and each one's length."""
    encoded = [v.encode("utf-8") for v in values[present]]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), lengths


def encode_rows(statement: PreparedStatement, columns: Sequence[tuple[np.ndarray, np.ndarray | None, str]],
                null: int = UNSET) -> EncodedRows:
    """The rows of ``columns`` (values, NULL mask or None, `l1db.frames.column_kind`) bound to ``statement``.

    Fixed-width values are the big-endian bytes of their type, text its
    UTF-8 bytes, as ``cassandra.cqltypes`` serializes them. A NULL is written
    with length ``null``: `UNSET` (the default: nothing is written, since a
    NULL is a tombstone) or `NULL` (a row that replaces another of the same
    key must clear the old value).
    """
    n = len(columns[0][0]) if columns else 0
    query_id = statement.query_id
    prefix = np.frombuffer(b"\x01" + struct.pack(">H", len(query_id)) + query_id + struct.pack(">H", len(columns)),
                           dtype=np.uint8)
    lengths = np.empty((n, len(columns)), dtype=np.int64)
    texts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    fixed_at = np.full(len(columns), -1, dtype=np.int64)
    text_at = np.full(len(columns), -1, dtype=np.int64)
    width = 0
    for j, (values, nulls, kind) in enumerate(columns):
        present = np.ones(n, dtype=bool) if nulls is None else ~np.asarray(nulls, dtype=bool)
        if kind == "str":
            blob, text_lengths = _text_column(np.asarray(values, dtype=object), present)
            texts[j] = (blob, text_lengths, present)
            text_at[j] = len(texts) - 1
            lengths[present, j] = text_lengths
        else:
            itemsize = np.dtype(_WIRE[kind]).itemsize
            fixed_at[j] = width
            lengths[:, j] = itemsize
            width += itemsize
        lengths[~present, j] = null
    # The fixed-width values side by side, row by row, in wire format (a copy per column, no per-value work).
    fixed = np.empty((n, width), dtype=np.uint8)
    for j, (values, _, kind) in enumerate(columns):
        if kind != "str":
            wire = np.dtype(_WIRE[kind])
            at = int(fixed_at[j])
            fixed[:, at:at + wire.itemsize] = np.ascontiguousarray(values, dtype=wire).view(np.uint8).reshape(
                n, wire.itemsize)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(len(prefix) + (4 + np.maximum(lengths, 0)).sum(axis=1), out=offsets[1:])
    buffer = np.empty(int(offsets[-1]), dtype=np.uint8)
    text_starts = np.zeros((n, len(texts)), dtype=np.int64)
    _fill_rows(buffer, offsets, prefix, lengths, fixed, fixed_at, text_at, text_starts)
    for j, (blob, text_lengths, present) in texts.items():
        # Each byte's place: its value's start, plus its place within the value.
        first = np.cumsum(text_lengths) - text_lengths
        at = text_starts[present, text_at[j]]
        buffer[np.repeat(at - first, text_lengths) + np.arange(len(blob))] = blob
    return EncodedRows(buffer, offsets, len(prefix))


def warm_up() -> None:
    """Compile (or load from numba's cache) `_fill_rows` before any timed store."""
    statement = PreparedStatement([], b"warm-up", [], "", "", 5, None, None)
    encode_rows(statement, [(np.zeros(1, np.int64), None, "int64"), (np.array(["a"], dtype=object), None, "str")])


class EncodedBatch(BatchStatement):
    """Rows ``first`` to ``last`` of `EncodedRows` of ``statement``, as one batch (one partition's rows)."""

    def __init__(self, statement: PreparedStatement, rows: EncodedRows, first: int, last: int,
                 consistency_level: int, batch_type: BatchType = BatchType.UNLOGGED) -> None:
        super().__init__(batch_type=batch_type, consistency_level=consistency_level)
        self.body = rows.body(first, last)
        self.count = last - first
        # Routed as the driver routes a batch: by its first statement's partition key.
        self.keyspace = statement.keyspace
        indexes = statement.routing_key_indexes or ()
        self.routing_key = [rows.value(first, i) for i in indexes] or None

    def __len__(self) -> int:
        return self.count


class EncodedBatchMessage(BatchMessage):
    """A BATCH message whose statements are already in the wire format (`EncodedBatch`)."""

    body: memoryview
    count: int

    @classmethod
    def of(cls, message: BatchMessage, batch: EncodedBatch) -> EncodedBatchMessage:
        """``message`` (the driver's, for ``batch``: consistency, timestamp, keyspace, payload), with its body."""
        encoded = cls.__new__(cls)
        encoded.__dict__.update(message.__dict__)
        encoded.queries = ()
        encoded.body = batch.body
        encoded.count = batch.count
        return encoded

    def send_body(self, f: Any, protocol_version: int) -> None:
        # The driver writes the type, a count of 0 statements and what follows them: the statements go in between.
        frame = io.BytesIO()
        super().send_body(frame, protocol_version)
        head = frame.getbuffer()
        f.write(head[:1])
        write_short(f, self.count)
        f.write(self.body)
        f.write(head[3:])


def send(session: Session, statement: Any, parameters: Any, timeout: float | None) -> ResponseFuture:
    """``session.execute_async(statement, parameters, timeout=timeout)``; an `EncodedBatch` as it is encoded."""
    if not isinstance(statement, EncodedBatch):
        return session.execute_async(statement, parameters, timeout=timeout)
    # Session.execute_async's two halves, the message swapped in between.
    future = session._create_response_future(statement, None, False, {}, timeout, EXEC_PROFILE_DEFAULT, None, None)
    future.message = EncodedBatchMessage.of(future.message, statement)
    future._protocol_handler = session.client_protocol_handler
    session._on_request(future)
    future.send_request()
    return future
