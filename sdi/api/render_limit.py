"""How many coverage and map-tile renders run at once in one worker process.

A render (a coverage subset or a map tile) holds a grid of cells in memory
and a core while it is encoded. Unbounded, a few large requests at once grow
the worker by gigabytes and starve every other request of its threads. Each
app (one per gunicorn worker process) has one :class:`RenderLimiter`: at
most ``slots`` renders run; a few more requests (``queue``) may wait up to
``wait_s`` seconds for a slot; anything beyond, or a wait that runs out, is
refused with :class:`RenderBusyError` (the API answers 503 with ``Retry-After``).

A slot is a :class:`Lease` with a bounded lifetime, ``hold_s``: a streamed
CoverageJSON body keeps its slot while the WSGI server sends it, and a client
that never reads would otherwise keep it for as long as its connection stays
open (a few such clients denied every render to everyone). A lease still held
``hold_s`` after it was taken is reclaimed, once, with a WARNING, and its slot
goes to the next request; the late ``release()`` of a reclaimed lease does
nothing. Waits wake when a lease expires, not only when one is released.

The limiter is in ``app.extensions`` (:func:`render_limiter`), where tests
can hold its slots to see the refusal without relying on timing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, current_app

from sdi.settings import Settings

__all__ = [
    "EXTENSION_KEY",
    "HeldBody",
    "Lease",
    "RenderBusyError",
    "RenderLimiter",
    "SlotHolder",
    "install",
    "render_limiter",
]

LOGGER = logging.getLogger(__name__)

#: Where the app keeps its :class:`RenderLimiter` in ``app.extensions``.
EXTENSION_KEY = "sdi_render_limiter"


class RenderBusyError(Exception):
    """Every render slot is taken and the queue is full or the wait ran out."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


class Lease:
    """One render slot, from :meth:`RenderLimiter.acquire` until it is released
    or reclaimed (``expires_at``, on the limiter's clock), whichever is first."""

    __slots__ = ("_limiter", "expires_at", "reclaimed", "taken_at")

    def __init__(self, limiter: RenderLimiter, taken_at: float, hold_s: float) -> None:
        self._limiter = limiter
        self.taken_at = taken_at
        self.expires_at = taken_at + hold_s
        #: Set when the limiter took the slot back because it was held too long.
        self.reclaimed = False

    def release(self) -> None:
        """Give the slot back; nothing happens if it was already released or
        reclaimed (so a late release never frees another request's slot)."""
        self._limiter.release(self)


class RenderLimiter:
    """``slots`` render leases with a bounded queue, wait and lifetime."""

    def __init__(
        self,
        slots: int,
        wait_s: float,
        queue: int | None = None,
        *,
        hold_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``queue`` defaults to half the slots (at least one), so that most of
        a worker's threads stay free for requests that render nothing.

        ``hold_s`` is a lease's lifetime; ``clock`` (seconds, monotonic) times
        leases and waits, and is there for tests to move time on.
        """
        if slots < 1:
            raise ValueError("at least one render slot is needed")
        if not hold_s > 0:
            raise ValueError("a render slot must be held for more than 0 s")
        self.slots = slots
        self.wait_s = max(0.0, wait_s)
        self.queue = max(1, slots // 2) if queue is None else max(0, queue)
        self.hold_s = hold_s
        self._clock = clock
        self._held: set[Lease] = set()
        self._waiting = 0
        self._cond = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimiter:
        """The limiter of ``SDI_MAX_RENDERS``, ``SDI_RENDER_WAIT_S`` and
        ``SDI_RENDER_HOLD_S``."""
        return cls(
            settings.max_renders, settings.render_wait_s, hold_s=settings.render_hold_s
        )

    @property
    def retry_after(self) -> int:
        """Seconds a refused client should wait before asking again."""
        return max(1, math.ceil(self.wait_s))

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        with self._cond:
            return self._waiting

    @property
    def running(self) -> int:
        """Slots taken now (leases past their lifetime are reclaimed first)."""
        with self._cond:
            self._reclaim(self._clock())
            return len(self._held)

    def _busy(self, why: str) -> RenderBusyError:
        return RenderBusyError(
            self.retry_after,
            f"The server is busy drawing other maps and coverages ({why}); try "
            f"again in {self.retry_after} s.",
        )

    def _reclaim(self, now: float) -> None:
        """Take back every lease held past its lifetime (with the lock held)."""
        expired = [lease for lease in self._held if lease.expires_at <= now]
        for lease in expired:
            self._held.discard(lease)
            lease.reclaimed = True
            LOGGER.warning(
                "A render slot was reclaimed after %.1f s (SDI_RENDER_HOLD_S=%g): "
                "its request was still rendering or sending its response, most "
                "likely to a client that does not read it.",
                now - lease.taken_at,
                self.hold_s,
            )
        if expired:
            self._cond.notify_all()

    def _wait(self, now: float, until: float) -> None:
        """Wait for a change, at most until ``until`` or the next lease expiry."""
        if self._held:
            until = min(until, min(lease.expires_at for lease in self._held))
        self._cond.wait(max(0.0, until - now))

    def _take(self, now: float) -> Lease:
        lease = Lease(self, now, self.hold_s)
        self._held.add(lease)
        self._cond.notify_all()  # wakes wait_for
        return lease

    def acquire(self) -> Lease:
        """Take a slot, waiting at most ``wait_s`` in a queue of ``queue``.

        Raises :class:`RenderBusyError` when the queue is full or the wait runs out.
        """
        with self._cond:
            now = self._clock()
            self._reclaim(now)
            if len(self._held) < self.slots:
                return self._take(now)
            if self._waiting >= self.queue:
                raise self._busy("the queue is full")
            self._waiting += 1
            self._cond.notify_all()  # wakes wait_for
            try:
                deadline = now + self.wait_s
                while True:
                    now = self._clock()
                    self._reclaim(now)
                    if len(self._held) < self.slots:
                        return self._take(now)
                    if now >= deadline:
                        raise self._busy(
                            f"no render slot came free in {self.wait_s:g} s"
                        )
                    self._wait(now, deadline)
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def release(self, lease: Lease) -> None:
        """Give ``lease``'s slot back (a no-op if it was released or reclaimed)."""
        with self._cond:
            if lease in self._held:
                self._held.discard(lease)
                self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[Lease]:
        """Hold a slot for the block."""
        lease = self.acquire()
        try:
            yield lease
        finally:
            lease.release()

    def wait_for(
        self,
        *,
        waiting: int | None = None,
        running: int | None = None,
        timeout: float = 30.0,
    ) -> bool:
        """Block until exactly ``waiting`` requests wait and/or ``running``
        slots are taken (for tests: a signal, not a sleep); False after
        ``timeout`` real seconds. Leases are reclaimed as they expire."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                now = self._clock()
                self._reclaim(now)
                if (waiting is None or self._waiting == waiting) and (
                    running is None or len(self._held) == running
                ):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._wait(now, now + left)


def install(app: Flask, settings: Settings) -> RenderLimiter:
    """Give ``app`` its limiter (from the settings)."""
    limiter = RenderLimiter.from_settings(settings)
    app.extensions[EXTENSION_KEY] = limiter
    return limiter


def render_limiter(app: Flask | None = None) -> RenderLimiter:
    """The :class:`RenderLimiter` of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    limiter: RenderLimiter = target.extensions[EXTENSION_KEY]
    return limiter


class HeldBody:
    """A streamed response body that holds a render slot until it is closed.

    The WSGI server calls ``close()`` whether or not the body was read to the
    end; the slot is released then (or at the end of the body, if sooner). A
    client that reads too slowly loses the slot when the lease expires (the
    body is still sent; the late release does nothing).
    """

    def __init__(self, lease: Lease, chunks: Iterator[bytes]) -> None:
        self._lease: Lease | None = lease
        self._chunks = chunks

    def __iter__(self) -> HeldBody:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        """Stop the body and give the slot back (idempotent)."""
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            lease.release()


class SlotHolder:
    """Takes a render slot when called, for a provider to call just before it
    reads (so that bad requests are refused with a 400 without waiting).

    ``release()`` gives the slot back if one was taken; ``body()`` hands it to
    a streamed body instead.
    """

    def __init__(self, limiter: RenderLimiter) -> None:
        self.limiter = limiter
        self.lease: Lease | None = None

    def __call__(self) -> None:
        """Take a slot (raises :class:`RenderBusyError`)."""
        if self.lease is None:
            self.lease = self.limiter.acquire()

    def release(self) -> None:
        """Give the slot back, if this holder took one (idempotent)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()

    def body(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` as a body that keeps the slot until the response is done."""
        lease, self.lease = self.lease, None
        if lease is None:
            return chunks
        return HeldBody(lease, chunks)
