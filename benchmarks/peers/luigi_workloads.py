"""The benchmark workloads on Luigi, run with ``.peers/luigi/bin/python``.

Luigi passes data only through targets: each task's ``requires()`` names its upstream tasks
and its ``output()`` a target holding its value. Chain and fan-out use ``MockTarget`` (Luigi's
in-memory file system); the persisted chain uses ``LocalTarget`` files in a scratch folder.
Runs are ``luigi.build(..., local_scheduler=True)`` with one worker, log level INFO (as the
other engines run by default; Luigi's own default is DEBUG).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import luigi
from _common import Runner, main
from luigi.mock import MockTarget


def _read(target: Any) -> int:
    with target.open("r") as f:
        return int(f.read())


def _write(target: Any, value: int) -> None:
    with target.open("w") as f:
        f.write(str(value))


class Step(luigi.Task):
    """Step ``i`` of a chain: step 0 starts at 0, every other adds 1 to its upstream's value."""

    i = luigi.IntParameter()
    tag = luigi.Parameter()

    def requires(self) -> list[luigi.Task]:
        return [type(self)(i=self.i - 1, tag=self.tag)] if self.i > 0 else []

    def output(self) -> luigi.Target:
        return MockTarget(f"{self.tag}/step-{self.i}")

    def run(self) -> None:
        _write(self.output(), _read(self.input()[0]) + 1 if self.i > 0 else 0)


class FileStep(Step):
    """The same step, its value in a file under the folder ``tag``."""

    def output(self) -> luigi.Target:
        return luigi.LocalTarget(f"{self.tag}/step-{self.i}")


class Source(luigi.Task):
    tag = luigi.Parameter()

    def output(self) -> luigi.Target:
        return MockTarget(f"{self.tag}/source")

    def run(self) -> None:
        _write(self.output(), 1)


class Branch(luigi.Task):
    i = luigi.IntParameter()
    tag = luigi.Parameter()

    def requires(self) -> Source:
        return Source(tag=self.tag)

    def output(self) -> luigi.Target:
        return MockTarget(f"{self.tag}/b{self.i}")

    def run(self) -> None:
        _write(self.output(), _read(self.input()) + self.i)


class Join(luigi.Task):
    m = luigi.IntParameter()
    tag = luigi.Parameter()

    def requires(self) -> list[Branch]:
        return [Branch(i=i, tag=self.tag) for i in range(self.m)]

    def output(self) -> luigi.Target:
        return MockTarget(f"{self.tag}/join")

    def run(self) -> None:
        _write(self.output(), sum(_read(t) for t in self.input()))


def _runner(final: luigi.Task) -> Runner:
    def run() -> int:
        ok = luigi.build([final], local_scheduler=True, workers=1, log_level="INFO",
                         detailed_summary=False)
        assert ok, f"luigi.build failed for {final}"
        return _read(final.output())

    return run


def chain(n: int, work: Path) -> Runner:
    return _runner(Step(i=n - 1, tag=str(work)))


def persisted_chain(n: int, work: Path) -> Runner:
    return _runner(FileStep(i=n - 1, tag=str(work)))


def fanout(m: int, work: Path) -> Runner:
    return _runner(Join(m=m, tag=str(work)))


if __name__ == "__main__":
    main("luigi", "luigi", chain=chain, fanout=fanout, persisted_chain=persisted_chain)
