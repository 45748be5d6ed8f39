"""A small thread-safe cache that forgets its least recently used entries.

The OGC API remembers facts about immutable layer versions per process
(counts, page positions, checkpoints, change summaries): they never go stale,
but the number of requests that can create them is unbounded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["BoundedCache"]


class BoundedCache[K: Hashable, V]:
    """At most ``size`` entries; the least recently used go first."""

    def __init__(self, size: int) -> None:
        """An empty cache of at most ``size`` entries."""
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """Whether ``key`` is cached, and its value (which may be None)."""
        with self._lock:
            if key not in self._entries:
                return False, None
            self._entries.move_to_end(key)
            return True, self._entries[key]

    def get(self, key: K) -> V | None:
        """The cached value of ``key``, None if there is none."""
        return self.lookup(key)[1]

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key``, forgetting the oldest beyond the size."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
