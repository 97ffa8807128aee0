"""``BashOperator``: run a shell command; its last line of output becomes XCom."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Container, Mapping
from pathlib import Path
from typing import Any

from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import TaskError, TaskSkipped

log = logging.getLogger("mlpipe.task")


def context_env(context: Mapping[str, Any]) -> dict[str, str]:
    """``MLPIPE_CTX_*`` variables that tell a command which task instance runs it."""
    ti = context.get("ti")
    values = {
        "MLPIPE_CTX_DAG_ID": getattr(context.get("dag"), "dag_id", None),
        "MLPIPE_CTX_TASK_ID": getattr(ti, "task_id", None),
        "MLPIPE_CTX_RUN_ID": context.get("run_id"),
        "MLPIPE_CTX_LOGICAL_DATE": context.get("ts"),
        "MLPIPE_CTX_TRY_NUMBER": getattr(ti, "try_number", None),
        "MLPIPE_CTX_MAP_INDEX": getattr(ti, "map_index", None),
    }
    return {k: str(v) for k, v in values.items() if v is not None}


def run_command(command: str, *, env: Mapping[str, str], cwd: str | None,
                encoding: str) -> tuple[int, str]:
    """Run ``command`` with bash in its own process group, logging each output line.

    Returns the exit code and the last line. If this thread is interrupted (a timeout, or
    Ctrl-C), the whole process group is stopped before the exception goes on.
    """
    proc = subprocess.Popen(
        ["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=dict(env), cwd=cwd, start_new_session=True,
    )
    last = ""
    try:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(encoding, errors="backslashreplace").rstrip("\n")
            log.info("%s", line)
            last = line
        return proc.wait(), last
    except BaseException:
        stop_process_group(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def stop_process_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


class BashOperator(BaseOperator):
    """Runs ``bash_command`` with bash; a non-zero exit code fails the task.

    The last line the command prints is pushed as XCom. Exit code 99 (or any code in
    ``skip_on_exit_code``) marks the task skipped. ``env`` replaces the environment unless
    ``append_env=True`` adds it to the current one. A ``bash_command`` ending in ``.sh`` is
    loaded as a template file relative to the DAG file.
    """

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(
        self,
        task_id: str,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.append_env = append_env
        self.output_encoding = output_encoding
        if isinstance(skip_on_exit_code, int):
            skip_on_exit_code = [skip_on_exit_code]
        self.skip_on_exit_code = list(skip_on_exit_code or [])
        self.cwd = cwd

    def build_env(self, context: Context) -> dict[str, str]:
        if self.env is None:
            env = dict(os.environ)
        elif self.append_env:
            env = {**os.environ, **self.env}
        else:
            env = dict(self.env)
        env.update(context_env(context))
        return env

    def execute(self, context: Context) -> Any:
        command = self.bash_command
        if not isinstance(command, str) or not command.strip():
            raise TaskError(f"task {self.task_id!r}: bash_command is empty")
        if self.cwd is not None and not Path(self.cwd).is_dir():
            raise TaskError(f"task {self.task_id!r}: cwd {self.cwd!r} is not a directory")
        log.info("Running command: %s", command)
        code, last = run_command(command, env=self.build_env(context), cwd=self.cwd,
                                 encoding=self.output_encoding)
        log.info("Command exited with return code %s", code)
        if code in self.skip_on_exit_code:
            raise TaskSkipped(f"bash command exited with code {code}: task marked skipped")
        if code != 0:
            raise TaskError(f"bash command failed: exit code {code}")
        return last
