"""``mlpipe connections add|get|list|delete|test|rotate-fernet-key``: stored connections.

Connections from the environment (``MLPIPE_CONN_<ID>``) are shown and tested too; they win
over stored ones of the same id. Passwords and sensitive extras are never printed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mlpipe.cli.common import Output, open_engine
from mlpipe.cli.output import OutputFormat, console, guarded, print_rows
from mlpipe.connections import (
    Connection,
    ConnectionNotFoundError,
    EnvSecretsBackend,
    InvalidConnectionError,
    mask_secret,
)
from mlpipe.connections.connection import parse_extra
from mlpipe.connections.metastore_backend import SecretsStore

app = typer.Typer(help="Manage connections to external systems (S3, databases...).",
                  no_args_is_help=True)

COLUMNS = ["conn_id", "conn_type", "source", "host", "port", "login", "password", "schema",
           "extra"]
Opt = typer.Option


def secrets_store() -> SecretsStore:
    """The configured metadata DB's connections and variables, with ``MLPIPE_FERNET_KEY``."""
    engine = open_engine(None, check_folder=False)
    return SecretsStore(engine.store.engine, fernet_key=engine.settings.fernet_key,
                        key_file=engine.settings.fernet_key_file)


def find_connection(conn_id: str, store: SecretsStore) -> tuple[Connection, str]:
    """The connection and where it came from (``env`` or ``db``); env wins."""
    env = EnvSecretsBackend()
    for source, backend in (("env", env), ("db", store)):
        conn = backend.get_connection(conn_id)
        if conn is not None:
            for secret in conn.secrets():
                mask_secret(secret)
            return conn, source
    raise ConnectionNotFoundError(conn_id, [*env.connection_ids(), *store.connection_ids()])


def _row(conn: Connection, source: str, fmt: OutputFormat) -> dict[str, Any]:
    row = {**conn.to_dict(masked=True), "source": source}
    if fmt is OutputFormat.table:
        row["extra"] = json.dumps(row["extra"]) if row["extra"] else None
    return row


@app.command("add")
@guarded
def add(
    conn_id: str,
    conn_uri: Annotated[str | None, Opt("--conn-uri", help="TYPE://LOGIN:PASSWORD@HOST:PORT/"
                                        "SCHEMA?EXTRA=VALUE, or a JSON object")] = None,
    conn_type: Annotated[str | None, Opt("--conn-type", help="aws, postgres, sqlite...")
                         ] = None,
    conn_host: Annotated[str | None, Opt("--conn-host")] = None,
    conn_login: Annotated[str | None, Opt("--conn-login")] = None,
    conn_password: Annotated[str | None, Opt("--conn-password")] = None,
    conn_port: Annotated[int | None, Opt("--conn-port")] = None,
    conn_schema: Annotated[str | None, Opt("--conn-schema")] = None,
    conn_extra: Annotated[str | None, Opt("--conn-extra", help="extras as a JSON object")
                          ] = None,
    conn_description: Annotated[str | None, Opt("--conn-description")] = None,
) -> None:
    """Store a connection (password and extra encrypted when MLPIPE_FERNET_KEY is set)."""
    if not conn_id.strip() or any(c.isspace() for c in conn_id):
        raise InvalidConnectionError(conn_id, "a connection id must be non-empty and have no "
                                              "spaces")
    fields = (conn_type, conn_host, conn_login, conn_password, conn_port, conn_schema)
    if conn_uri is not None and any(f is not None for f in fields):
        raise InvalidConnectionError(conn_id, "--conn-uri cannot be combined with "
                                              "--conn-type/--conn-host/--conn-login/"
                                              "--conn-password/--conn-port/--conn-schema")
    if conn_uri is not None:
        conn = Connection.from_string(conn_id, conn_uri)
        conn.extra.update(parse_extra(conn_id, conn_extra))
        conn.description = conn_description or conn.description
    elif conn_type is not None:
        conn = Connection(conn_id, conn_type, host=conn_host, port=conn_port, login=conn_login,
                          password=conn_password, schema=conn_schema,
                          extra=parse_extra(conn_id, conn_extra), description=conn_description)
    else:
        raise InvalidConnectionError(conn_id, "give --conn-uri URI, or --conn-type TYPE with "
                                              "--conn-host/--conn-login/...")
    for secret in conn.secrets():
        mask_secret(secret)
    store = secrets_store()
    store.add_connection(conn)
    console.print(f"connection {conn_id} added: {conn.conn_type} at {conn.endpoint()}",
                  markup=False)


@app.command("get")
@guarded
def get(conn_id: str, output: Output = OutputFormat.table) -> None:
    """Show one connection (the password as ***)."""
    conn, source = find_connection(conn_id, secrets_store())
    print_rows([_row(conn, source, output)], COLUMNS, output)


@app.command("list")
@guarded
def list_connections(output: Output = OutputFormat.table) -> None:
    """Stored connections and those from MLPIPE_CONN_* (passwords as ***)."""
    store = secrets_store()
    env = EnvSecretsBackend()
    found: dict[str, tuple[Connection, str]] = {c.conn_id: (c, "db")
                                                for c in store.list_connections()}
    for conn_id in env.connection_ids():
        conn = env.get_connection(conn_id)
        assert conn is not None
        found[conn_id] = (conn, "env")
    rows = [_row(conn, source, output) for conn, source in
            (found[k] for k in sorted(found))]
    print_rows(rows, COLUMNS, output)


@app.command("delete")
@guarded
def delete(conn_id: str) -> None:
    """Delete a stored connection."""
    store = secrets_store()
    if store.delete_connection(conn_id):
        console.print(f"connection {conn_id} deleted", markup=False)
        return
    env = EnvSecretsBackend()
    if env.get_connection(conn_id) is not None:
        raise InvalidConnectionError(conn_id, f"it is not stored but set by "
                                              f"MLPIPE_CONN_{conn_id.upper()} in the "
                                              "environment; unset that variable instead")
    raise ConnectionNotFoundError(conn_id, [*env.connection_ids(), *store.connection_ids()])


@app.command("test")
@guarded
def test(conn_id: str) -> None:
    """Connect for real (S3: list the bucket or the buckets; SQL: select 1)."""
    from mlpipe.hooks import hook_for

    conn, _ = find_connection(conn_id, secrets_store())
    detail = hook_for(conn).test_connection()
    console.print(f"connection {conn_id} works ({conn.endpoint()}): {detail}", markup=False)


@app.command("rotate-fernet-key")
@guarded
def rotate_fernet_key() -> None:
    """Re-encrypt every stored secret with the first key of ``MLPIPE_FERNET_KEY="new,old"``."""
    store = secrets_store()
    count = store.rotate_fernet_key()
    console.print(f"re-encrypted the secrets of {count} connection(s) and variable(s) with "
                  "the first key of MLPIPE_FERNET_KEY; the old key can be removed", markup=False)
