"""How many coverage and map-tile renders run at once in one worker process.

A render (a coverage subset or a map tile) holds a grid of cells in memory
and a core while it is encoded. Unbounded, a few large requests at once grow
the worker by gigabytes and starve every other request of its threads. Each
app (one per gunicorn worker process) has one :class:`RenderLimiter`: at
most ``slots`` renders run; a few more requests (``queue``) may wait up to
``wait_s`` seconds for a slot; anything beyond, or a wait that runs out, is
refused with :class:`RenderBusyError` (the API answers 503 with ``Retry-After``).

The limiter is in ``app.extensions`` (:func:`render_limiter`), where tests
can hold its slots to see the refusal without relying on timing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app

from sdi.settings import Settings

__all__ = [
    "EXTENSION_KEY",
    "HeldBody",
    "RenderBusyError",
    "RenderLimiter",
    "SlotHolder",
    "install",
    "render_limiter",
]

#: Where the app keeps its :class:`RenderLimiter` in ``app.extensions``.
EXTENSION_KEY = "sdi_render_limiter"


class RenderBusyError(Exception):
    """Every render slot is taken and the queue is full or the wait ran out."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


class RenderLimiter:
    """A semaphore of ``slots`` renders with a bounded queue and a bounded wait."""

    def __init__(self, slots: int, wait_s: float, queue: int | None = None) -> None:
        """``queue`` defaults to half the slots (at least one), so that most of
        a worker's threads stay free for requests that render nothing."""
        if slots < 1:
            raise ValueError("at least one render slot is needed")
        self.slots = slots
        self.wait_s = max(0.0, wait_s)
        self.queue = max(1, slots // 2) if queue is None else max(0, queue)
        self._free = slots
        self._waiting = 0
        self._cond = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimiter:
        """The limiter of ``SDI_MAX_RENDERS`` and ``SDI_RENDER_WAIT_S``."""
        return cls(settings.max_renders, settings.render_wait_s)

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
        """Slots taken now."""
        with self._cond:
            return self.slots - self._free

    def _busy(self, why: str) -> RenderBusyError:
        return RenderBusyError(
            self.retry_after,
            f"The server is busy drawing other maps and coverages ({why}); try "
            f"again in {self.retry_after} s.",
        )

    def acquire(self) -> None:
        """Take a slot, waiting at most ``wait_s`` in a queue of ``queue``.

        Raises :class:`RenderBusyError` when the queue is full or the wait runs out.
        """
        with self._cond:
            if self._free > 0:
                self._free -= 1
                self._cond.notify_all()
                return
            if self._waiting >= self.queue:
                raise self._busy("the queue is full")
            self._waiting += 1
            self._cond.notify_all()  # wakes wait_for
            try:
                deadline = time.monotonic() + self.wait_s
                while self._free == 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._busy(
                            f"no render slot came free in {self.wait_s:g} s"
                        )
                    self._cond.wait(left)
                self._free -= 1
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            if self._free >= self.slots:
                raise RuntimeError("render slot released twice")
            self._free += 1
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def wait_for(
        self,
        *,
        waiting: int | None = None,
        running: int | None = None,
        timeout: float = 30.0,
    ) -> bool:
        """Block until exactly ``waiting`` requests wait and/or ``running``
        slots are taken (for tests: a signal, not a sleep); False on timeout."""

        def reached() -> bool:
            return (waiting is None or self._waiting == waiting) and (
                running is None or self.slots - self._free == running
            )

        with self._cond:
            return self._cond.wait_for(reached, timeout)


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
    end; the slot is released then (or at the end of the body, if sooner).
    """

    def __init__(self, limiter: RenderLimiter, chunks: Iterator[bytes]) -> None:
        self._limiter: RenderLimiter | None = limiter
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
        limiter, self._limiter = self._limiter, None
        if limiter is None:
            return
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            limiter.release()


class SlotHolder:
    """Takes a render slot when called, for a provider to call just before it
    reads (so that bad requests are refused with a 400 without waiting).

    ``release()`` gives the slot back if one was taken; ``body()`` hands it to
    a streamed body instead.
    """

    def __init__(self, limiter: RenderLimiter) -> None:
        self.limiter = limiter
        self.held = False

    def __call__(self) -> None:
        """Take a slot (raises :class:`RenderBusyError`)."""
        if not self.held:
            self.limiter.acquire()
            self.held = True

    def release(self) -> None:
        """Give the slot back, if this holder took one (idempotent)."""
        if self.held:
            self.held = False
            self.limiter.release()

    def body(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` as a body that keeps the slot until the response is done."""
        if not self.held:
            return chunks
        self.held = False
        return HeldBody(self.limiter, chunks)
