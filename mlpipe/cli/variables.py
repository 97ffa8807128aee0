"""``mlpipe variables set|get|list|delete``: JSON values in the metadata DB.

A value that is not JSON is stored as a string. Values of variables whose name contains
secret/password/token/key are printed as ``***`` (``get --reveal`` shows one).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mlpipe.cli.common import Output
from mlpipe.cli.connections import secrets_store
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows
from mlpipe.connections import (
    EnvSecretsBackend,
    VariableNotFoundError,
    get_variable,
    is_sensitive_name,
)
from mlpipe.connections.variables import to_json_text, value_text
from mlpipe.errors import ConnectionsError
from mlpipe.masking import MASK

app = typer.Typer(help="Manage variables (var.value.NAME / var.json.NAME in templates).",
                  no_args_is_help=True)

COLUMNS = ["key", "source", "is_encrypted", "description", "value"]


def _shown(key: str, stored: str) -> str:
    return MASK if is_sensitive_name(key) else value_text(stored)


@app.command("set")
@guarded
def set_variable(
    key: str,
    value: str,
    description: Annotated[str | None, typer.Option("--description")] = None,
) -> None:
    """Create or replace a variable (JSON, or else a string)."""
    if not key.strip() or any(c.isspace() for c in key):
        raise ConnectionsError(f"variable key {key!r} must be non-empty and have no spaces")
    store = secrets_store()
    store.set_variable(key, to_json_text(value), description=description)
    how = "encrypted" if store.cipher.enabled else "not encrypted: MLPIPE_FERNET_KEY is not set"
    console.print(f"variable {key} set ({how})", markup=False)


@app.command("get")
@guarded
def get(
    key: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the value as JSON")] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="print a secret variable's value")
                      ] = False,
) -> None:
    """Print a variable's value (from MLPIPE_VAR_<KEY> or the metadata DB)."""
    value = get_variable(key, deserialize_json=as_json,
                         backends=[EnvSecretsBackend(), secrets_store()])
    if is_sensitive_name(key) and not reveal:
        value = MASK
    elif as_json:
        value = json.dumps(value)
    typer.echo(value)


@app.command("list")
@guarded
def list_variables(output: Output = OutputFormat.table) -> None:
    """Stored variables and those from MLPIPE_VAR_* (secret ones as ***)."""
    found: dict[str, dict[str, Any]] = {
        v.key: {"key": v.key, "source": "db", "is_encrypted": v.is_encrypted,
                "description": v.description, "value": _shown(v.key, v.value)}
        for v in secrets_store().list_variables()
    }
    env = EnvSecretsBackend()
    for key in env.variable_keys():
        stored = env.get_variable(key)
        assert stored is not None
        found[key] = {"key": key, "source": "env", "is_encrypted": False, "description": None,
                      "value": _shown(key, stored)}
    print_rows([found[k] for k in sorted(found)], COLUMNS, output)


@app.command("delete")
@guarded
def delete(key: str) -> None:
    """Delete a stored variable."""
    store = secrets_store()
    if store.delete_variable(key):
        console.print(f"variable {key} deleted", markup=False)
        return
    env = EnvSecretsBackend()
    if env.get_variable(key) is not None:
        raise ConnectionsError(f"variable {key!r} is not stored but set by "
                               f"MLPIPE_VAR_{key.upper()} in the environment; unset that "
                               "variable instead")
    raise VariableNotFoundError(key, [*env.variable_keys(), *store.variable_keys()])
