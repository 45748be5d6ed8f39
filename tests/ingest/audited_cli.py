"""Run the ``sdi`` command and record what it wrote (for the refusal tests).

``python tests/ingest/audited_cli.py REPORT ARGS...`` runs ``sdi ARGS...`` in
this process with an audit hook that notes every file opened for writing
under ``SDI_VAR_DIR``; at exit it writes those paths and the bytes the
process wrote to storage (``write_bytes`` of /proc/self/io) to REPORT as JSON.
Observation only: the command runs unchanged.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def main() -> None:
    report = Path(sys.argv[1])
    var = str(Path(os.environ["SDI_VAR_DIR"]).resolve())
    opened: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.fsdecode(args[0])
        mode, flags = args[1], args[2]
        writing = (
            any(c in mode for c in "wxa+") if isinstance(mode, str) else False
        ) or bool(isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing and os.path.abspath(path).startswith(var):
            opened.append(path)

    def done() -> None:
        io = dict(
            line.split(": ") for line in Path("/proc/self/io").read_text().splitlines()
        )
        report.write_text(
            json.dumps({"opened": opened, "write_bytes": int(io["write_bytes"])})
        )

    atexit.register(done)
    sys.addaudithook(hook)
    from sdi.cli import cli

    cli.main(args=sys.argv[2:], prog_name="sdi")


if __name__ == "__main__":
    main()
