"""TransferProgress: log lines with objects and bytes; a live bar on a real terminal."""

from __future__ import annotations

import logging
import os
import pty
import subprocess
import sys

import pytest

from mlpipe.operators.transfer_progress import TransferProgress


def test_logs_every_tenth_with_counts_bytes_and_rate(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.transfer")
    with caplog.at_level(logging.INFO, logger="test.transfer"), \
            TransferProgress("downloaded", 20, 20 * 500_000, log) as progress:
        for _ in range(20):
            progress.advance(500_000)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10
    assert lines[0].startswith("downloaded 2/20 objects, 1.0 MB of 10.0 MB (")
    assert lines[-1].startswith("downloaded 20/20 objects, 10.0 MB of 10.0 MB (")
    assert lines[-1].endswith(" MB/s)")


SCRIPT = """
import logging
from mlpipe.operators.transfer_progress import TransferProgress
with TransferProgress("downloaded", 3, 3_000_000, logging.getLogger("x")) as p:
    for _ in range(3):
        p.advance(1_000_000)
"""


def test_a_terminal_gets_a_progress_bar_with_objects_and_bytes() -> None:
    main, secondary = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT], stderr=secondary,
                              stdout=subprocess.DEVNULL, timeout=60, check=True)
        assert done.returncode == 0
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the other side is closed: all read
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(main)
    text = output.decode(errors="replace")
    assert "downloaded" in text and "3/3 objects" in text and "3.0/3.0 MB" in text
