"""``mlpipe users create|list|delete|token`` as a user runs them: passwords hashed, never
echoed; bad input one line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.web.passwords import token_digest, verify_password


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def open_store() -> MetadataStore:
    return MetadataStore.open(load_settings().database)


def test_create_list_token_delete(isolated_env: Path) -> None:
    code, out = run("users", "create", "ana", "--role", "op", "--password-stdin",
                    stdin="correct horse\n")
    _, listed = run("users", "list", "-o", "json")
    _, token = run("users", "token", "ana")
    store = open_store()
    record = store.get_user("ana")
    owner = store.user_of_token(token_digest(token.strip()))

    assert code == 0 and "correct horse" not in out
    assert [(u["name"], u["role"]) for u in json.loads(listed)] == [("ana", "op")]
    assert record is not None and verify_password(record.password_hash, "correct horse")
    assert owner is not None and owner.name == "ana"
    raw = (isolated_env / "mlpipe.db").read_bytes()
    assert b"correct horse" not in raw and token.strip().encode() not in raw
    store.dispose()

    code, out = run("users", "delete", "ana")
    assert code == 0
    store = open_store()
    assert store.get_user("ana") is None
    assert store.user_of_token(token_digest(token.strip())) is None
    store.dispose()


def test_bad_input_is_one_line_and_exit_1(isolated_env: Path) -> None:
    run("users", "create", "ana", "--password-stdin", stdin="long enough\n")
    cases = {
        ("users", "create", "bob", "--role", "root", "--password-stdin"): "unknown role 'root'",
        ("users", "create", "bob", "--password-stdin"): "a password needs 8",
        ("users", "create", "../bob", "--password-stdin"): "user name '../bob' is not valid",
        ("users", "create", "ana", "--password-stdin"): "user 'ana' exists already",
        ("users", "delete", "nobody"): "no user 'nobody'; known: ['ana']",
        ("users", "token", "nobody"): "no user 'nobody'",
    }
    for args, message in cases.items():
        stdin = "short\n" if args[2] == "bob" and "root" not in args else "long enough\n"
        code, out = run(*args, stdin=stdin)
        assert code == 1, args
        assert message in out, (args, out)
        assert "Traceback" not in out and out.count("error:") == 1


def test_without_a_terminal_the_password_must_come_from_stdin(isolated_env: Path) -> None:
    code, out = run("users", "create", "ana", stdin="")

    assert code == 1 and "--password-stdin" in out
    assert not (isolated_env / "mlpipe.db").exists()  # refused before touching anything
