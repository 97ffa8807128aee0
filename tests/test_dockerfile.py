"""The Dockerfile, checked without Docker: what the image is built from, what it runs, as whom.

The image cannot be built here, so these tests read the Dockerfile the way the builder does
(continuation lines, comments, stages) and check what a user relies on.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import app

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif keyword == "ARG" and not stages:
            continue  # an ARG before the first FROM
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def copy_sources(args: str) -> list[str]:
    """The sources of a COPY/ADD from the build context (``--from`` copies are skipped)."""
    words = shlex.split(args)
    if any(w.startswith("--from") for w in words):
        return []
    words = [w for w in words if not w.startswith("--")]
    if words and words[0].startswith("["):
        words = exec_form(args[args.index("["):])
    return words[:-1]


def dockerignore_patterns() -> list[str]:
    path = REPO / ".dockerignore"
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def ignored(source: str, patterns: list[str]) -> bool:
    source = source.rstrip("/").removeprefix("./")
    return any(fnmatch.fnmatch(source, p.rstrip("/")) for p in patterns if not p.startswith("!"))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    assert DOCKERFILE.is_file(), "Dockerfile at the repository root"
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_every_base_image_is_pinned_to_an_exact_python_slim_version(stages: list[Stage]) -> None:
    names = {s.name for s in stages if s.name}
    bases = [s.image for s in stages if s.image not in names]
    assert len(bases) == 2, bases  # the build stage and the final stage
    for image in bases:
        assert "$" not in image, f"{image}: a base image chosen by a build arg is not pinned"
        repo, _, tag = image.partition(":")
        assert repo == "python", image
        assert re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag), \
            f"{image}: pin an exact version tag such as python:3.11.14-slim-bookworm"


def test_the_default_command_is_the_scheduler(final: Stage) -> None:
    assert exec_form(final.last("ENTRYPOINT") or "null") == ["mlpipe"]
    assert exec_form(final.last("CMD") or "null") == ["scheduler"]
    result = CliRunner().invoke(app, ["scheduler", "--help"])
    assert result.exit_code == 0, result.output


def test_the_package_is_installed_from_the_checkout_with_the_ml_extra(stages: list[Stage]
                                                                      ) -> None:
    installs = [(stage, run) for stage in stages for run in stage.all("RUN")
                if re.search(r"\bpip install\b", run)]
    assert installs, "no pip install in the Dockerfile"
    stage, run = next(((s, r) for s, r in installs if '".[ml]"' in r or " .[ml]" in r),
                      (None, None))
    assert stage is not None, f"pip install '.[ml]' from the checkout; found {installs}"
    copied = {src.rstrip("/") for args in stage.all("COPY") for src in copy_sources(args)}
    assert {"pyproject.toml", "mlpipe"} <= copied, copied
    assert "--index-url" not in run.replace("--extra-index-url", ""), \
        "PyTorch's CPU index must be an extra index (the rest comes from PyPI)"
    assert any(args.startswith("TORCH_INDEX_URL") for args in stage.all("ARG"))


def test_the_image_runs_as_a_non_root_user(final: Stage) -> None:
    user = final.last("USER")
    assert user is not None, "the final stage sets no USER: it would run as root"
    assert user.split(":")[0] not in ("root", "0")
    keywords = [kw for kw, _ in final.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_state_lives_in_the_data_volume_and_ports_are_exposed(final: Stage) -> None:
    env = env_of(final)
    assert env["MLPIPE_HOME"] == "/data"
    volumes = [v for args in final.all("VOLUME")
               for v in (exec_form(args) if args.startswith("[") else args.split())]
    assert "/data" in volumes
    ports = {p.split("/")[0] for args in final.all("EXPOSE") for p in args.split()}
    assert {"8000", "5000"} <= ports
    workdir = final.last("WORKDIR")
    assert workdir is not None
    copied = {src.rstrip("/") for args in final.all("COPY") for src in copy_sources(args)}
    assert {"pipelines", "configs"} <= copied


def test_every_copied_path_exists_and_is_not_dockerignored(stages: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    for pattern in (".venv", ".peers", ".mlpipe", ".git"):
        assert pattern in patterns, f".dockerignore should exclude {pattern}"
    sources = [src for stage in stages for kw in ("COPY", "ADD")
               for args in stage.all(kw) for src in copy_sources(args)]
    assert sources == ["pyproject.toml", "README.md", "mlpipe/", "pipelines/", "configs/"]
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file or folder in the repo"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


def test_the_healthcheck_command_succeeds_for_a_fresh_scheduler_home(
        final: Stage, isolated_env: Path) -> None:
    """The HEALTHCHECK is an mlpipe command that passes against the scheduler's database
    (here a fresh SQLite one, as in a new /data volume) and fails when it is unreachable."""
    healthcheck = final.last("HEALTHCHECK")
    assert healthcheck is not None
    command = healthcheck[healthcheck.index("CMD") + 3:].strip()
    argv = exec_form(command)
    assert argv[0] == "mlpipe", argv
    runner = CliRunner()
    result = runner.invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
    unreachable = runner.invoke(app, argv[1:], env={
        "MLPIPE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/mlpipe"})
    assert unreachable.exit_code == 1, unreachable.output
    assert unreachable.output.startswith("error: cannot reach the metadata database "
                                         "'postgresql+psycopg://nobody@127.0.0.1:1/mlpipe': ")
