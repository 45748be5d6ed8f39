"""One consistent view of the registry for a reader that runs several statements.

Building the served configuration reads layers, versions, withdrawn
versions, licences, agencies and table columns in separate statements. On an
autocommit connection each statement sees whatever was committed when it
ran, so a withdrawal or publish committed in between could make a build see
a layer pointing at a version it then finds withdrawn (and drop the layer).
:func:`registry_snapshot` runs them in one REPEATABLE READ, READ ONLY
transaction: every statement sees the registry as it was at the first one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Connection
from psycopg.pq import TransactionStatus

__all__ = ["SnapshotError", "registry_snapshot"]

#: Isolation levels whose transactions already keep one snapshot throughout.
_CONSISTENT = {"repeatable read", "serializable"}


class SnapshotError(RuntimeError):
    """A snapshot was asked for inside a transaction that cannot give one."""


@contextmanager
def registry_snapshot(conn: Connection[Any]) -> Iterator[Connection[Any]]:
    """Run the block's statements on ``conn`` in one REPEATABLE READ snapshot.

    On an idle connection (autocommit or not) this opens a read-only
    transaction, ended when the block ends. Inside a transaction that is
    already REPEATABLE READ or SERIALIZABLE (a caller's own snapshot) the
    block simply joins it. Inside a READ COMMITTED transaction no snapshot can
    be had any more: :class:`SnapshotError` (a programming error).
    """
    status = conn.info.transaction_status
    if status == TransactionStatus.INTRANS:
        row = conn.execute("SHOW transaction_isolation").fetchone()
        if row is None or str(row[0]) not in _CONSISTENT:
            raise SnapshotError(
                "A registry snapshot needs a connection outside a transaction "
                "or in a REPEATABLE READ one."
            )
        yield conn
        return
    with conn.transaction():
        # Must be the transaction's first statement; the snapshot itself is
        # taken by the first query after it.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield conn
