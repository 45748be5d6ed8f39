"""Database access: pools, the embedded cluster and migrations."""

from sdi.db.cluster import Cluster, ClusterError, find_pg_bindir
from sdi.db.migrate import migrate
from sdi.db.pool import make_pool, open_connection

__all__ = [
    "Cluster",
    "ClusterError",
    "find_pg_bindir",
    "make_pool",
    "migrate",
    "open_connection",
]
