"""Is the head of a file named like a CSV text that merely holds a NUL byte?

Sniffing treats a NUL byte as the mark of a binary file, so a CSV with a NUL
in its first bytes was refused as "not in a format sdi reads", while one with
a NUL further on got the clear NUL refusal (:func:`sdi.ingest.limits.check_no_nul`).
A head whose only oddity is a few NULs is text: it is read as a CSV, and the
NUL check then names the problem and where it is.
"""

from __future__ import annotations

import re

__all__ = ["is_text_with_nul"]

#: Control bytes text does not hold (tab, LF, CR, form feed and the DOS end of
#: file mark aside; NUL is judged by count).
_BINARY = re.compile(rb"[\x01-\x08\x0b\x0e-\x19\x1b-\x1f]")
#: More NULs than one byte in this many: UTF-16/32 text or binary, not a CSV.
_NUL_RATIO = 8


def is_text_with_nul(head: bytes) -> bool:
    """Whether ``head`` holds NUL bytes but otherwise reads as text."""
    nuls = head.count(0)
    if not nuls or nuls * _NUL_RATIO > len(head):
        return False
    return _BINARY.search(head) is None
