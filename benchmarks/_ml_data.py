"""Helpers shared by the ML-path benchmarks: real images, a local S3 server, scratch settings.

Images are real photographs: random crops of scikit-learn's sample images (``china.jpg``
and ``flower.jpg``, shipped with scikit-learn, no download), one class per source photo.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from PIL import Image

ACCESS_KEY = "bench-access-key-id"
SECRET_KEY = "bench-secret-access-key-not-real"
REGION = "us-east-1"

# The server runs in its own process: in the benchmark's process its request handling
# would compete for the GIL with the client under test (awscli always has its own process).
_SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server._server.server_port, flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""


def photo_crops(count: int, size: int, *, seed: int = 0
                ) -> Iterator[tuple[str, int, Image.Image]]:
    """``count`` random ``size`` x ``size`` RGB crops, alternating between the two photos.

    Yields ``(class name, index, image)``; the same arguments always give the same crops.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    names = [Path(f).stem for f in photos.filenames]  # "china", "flower"
    rng = np.random.default_rng(seed)
    for index in range(count):
        which = index % len(photos.images)
        photo = photos.images[which]
        top = int(rng.integers(0, photo.shape[0] - size + 1))
        left = int(rng.integers(0, photo.shape[1] - size + 1))
        yield names[which], index, Image.fromarray(photo[top:top + size, left:left + size])


def write_photo_dataset(dest: Path, count: int, size: int, *, fmt: str = "JPEG",
                        seed: int = 0) -> list[Path]:
    """Write ``count`` crops as ``dest/<class>/<index>.<ext>``; returns the files, sorted."""
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    options: dict[str, Any] = {"quality": 90} if fmt == "JPEG" else {}
    files = []
    for name, index, image in photo_crops(count, size, seed=seed):
        path = dest / name / f"{index:05d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, fmt, **options)
        files.append(path)
    return sorted(files)


@dataclass(frozen=True)
class MotoServer:
    """A running moto server: its URL and process id."""

    endpoint: str
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server process has used so far; None off Linux."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port) in a child process."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"moto server did not start (printed {port!r})")
        yield MotoServer(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def conn_uri(endpoint: str) -> str:
    """The ``MLPIPE_CONN_AWS_DEFAULT`` URI for ``endpoint`` (as ``mlpipe demo`` builds it)."""
    return (f"s3://{ACCESS_KEY}:{SECRET_KEY}@/?endpoint_url={quote(endpoint, safe='')}"
            f"&region_name={REGION}")


def s3_client(endpoint: str, **kwargs: Any) -> Any:
    """A plain boto3 client on ``endpoint`` (``kwargs`` go to ``boto3.client``)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        **kwargs)


@contextmanager
def scratch_env(**values: str) -> Iterator[None]:
    """Set environment variables for the block; restore the previous values afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    """The median (the figure every benchmark reports; runs here are noisy)."""
    return float(statistics.median(values))


def tree_bytes(root: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``root`` by POSIX relative path (names in ``exclude`` left out)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()
            and p.relative_to(root).as_posix() not in exclude}
