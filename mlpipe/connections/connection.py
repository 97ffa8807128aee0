"""``Connection``: where an external system is and how to log in, parsed from a URI or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from mlpipe.errors import InvalidConnectionError
from mlpipe.masking import MASK, is_sensitive_name

#: connection types whose login/password are an AWS access key id / secret access key
AWS_TYPES = frozenset({"aws", "s3"})
#: the extra holding extras that are not plain strings, in a URI's query
EXTRA_PARAM = "__extra__"
JSON_FIELDS = ("conn_type", "description", "host", "port", "login", "password", "schema",
               "extra")


@dataclass
class Connection:
    """A connection: type, host, port, login, password, schema and a dict of extras.

    For AWS (``aws``/``s3``) connections ``login`` and ``password`` are the access key id and
    the secret access key; extras such as ``endpoint_url`` and ``region_name`` configure the
    client. ``repr`` never shows the password or a sensitive extra.
    """

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def __post_init__(self) -> None:
        self.conn_type = normalize_type(self.conn_id, self.conn_type)
        if isinstance(self.extra, str):
            self.extra = parse_extra(self.conn_id, self.extra)
        elif self.extra is None:
            self.extra = {}
        if self.port is not None:
            self.port = parse_port(self.conn_id, self.port)

    # -- parsing -----------------------------------------------------------------------

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        """Parse ``type://login:password@host:port/schema?extra=value``.

        Login and password are URL-decoded; query parameters become extras (``__extra__``
        may hold a JSON object of extras). ``sqlite:///path.db`` keeps the path in ``host``.
        """
        try:
            parts = urlsplit(uri.strip())
        except ValueError as exc:
            raise InvalidConnectionError(conn_id, f"malformed URI: {exc}") from None
        if not parts.scheme or "://" not in uri:
            raise InvalidConnectionError(
                conn_id, "not a URI (expected TYPE://[LOGIN[:PASSWORD]@]HOST[:PORT][/SCHEMA]"
                "[?EXTRA=VALUE]) nor a JSON object")
        extra = _query_extras(conn_id, parts.query)
        if normalize_type(conn_id, parts.scheme) == "sqlite":
            path = unquote(parts.netloc + parts.path)
            return cls(conn_id, parts.scheme, host=path[1:] or None, extra=extra)
        try:
            port = parts.port
        except ValueError:
            raise InvalidConnectionError(conn_id, "the port in the URI is not a number 0-65535"
                                         ) from None
        return cls(
            conn_id, parts.scheme,
            host=unquote(parts.hostname) if parts.hostname else None,
            port=port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            schema=unquote(parts.path[1:]) if len(parts.path) > 1 else None,
            extra=extra,
        )

    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        """Parse ``{"conn_type": ..., "host": ..., "extra": {...}}``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidConnectionError(conn_id, f"not valid JSON: {exc.msg} at position "
                                                  f"{exc.pos}") from None
        if not isinstance(data, dict):
            raise InvalidConnectionError(conn_id, "JSON must be an object")
        unknown = sorted(set(data) - set(JSON_FIELDS))
        if unknown:
            raise InvalidConnectionError(conn_id, f"unknown field(s) {unknown}; valid: "
                                                  f"{sorted(JSON_FIELDS)}")
        if not data.get("conn_type"):
            raise InvalidConnectionError(conn_id, "JSON has no 'conn_type'")
        return cls(conn_id, **data)

    @classmethod
    def from_string(cls, conn_id: str, value: str) -> Connection:
        """A URI, or a JSON object if ``value`` starts with ``{``."""
        if value.lstrip().startswith("{"):
            return cls.from_json(conn_id, value)
        return cls.from_uri(conn_id, value)

    # -- views -------------------------------------------------------------------------

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The extras as a dict (a copy)."""
        copy: dict[str, Any] = json.loads(json.dumps(self.extra))
        return copy

    @property
    def is_aws(self) -> bool:
        return self.conn_type in AWS_TYPES

    def get_uri(self, *, masked: bool = False) -> str:
        """The connection as a URI that ``from_uri`` reads back; ``masked`` hides secrets."""
        extra = self.masked_extra() if masked else self.extra
        query = _query_string(extra)
        if self.conn_type == "sqlite":
            return f"sqlite:///{quote(self.host or '', safe='/:')}{query}"
        auth = ""
        if self.login or self.password:
            auth = quote(self.login or "", safe="")
            if self.password:
                auth += ":" + (MASK if masked else quote(self.password, safe=""))
            auth += "@"
        host = self.host or ""
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        port = f":{self.port}" if self.port is not None else ""
        path = "/" + quote(self.schema, safe="") if self.schema else ("/" if query else "")
        return f"{self.conn_type.replace('_', '-')}://{auth}{host}{port}{path}{query}"

    def masked_extra(self) -> dict[str, Any]:
        """The extras with sensitive ones (secret/password/token/key in the name) as ``***``."""
        return {k: MASK if is_sensitive_name(k) else v for k, v in self.extra.items()}

    def secrets(self) -> list[str]:
        """Every secret value of this connection: password and sensitive string extras."""
        values = [self.password] if self.password else []
        values += [v for k, v in self.extra.items() if is_sensitive_name(k) and isinstance(v, str)]
        return values

    def endpoint(self) -> str:
        """Where this connection points, for messages; never contains a secret."""
        if self.is_aws:
            url = self.extra.get("endpoint_url")
            region = self.extra.get("region_name")
            where = str(url) if url else "AWS S3"
            return f"{where} (region {region})" if region else where
        return self.get_uri(masked=True)

    def to_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """Fields by name (as the CLI prints them); ``masked`` hides password and secrets."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if masked:
            data["password"] = MASK if self.password else None
            data["extra"] = self.masked_extra()
        return data

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict(masked=True).items()
                          if v not in (None, {}))
        return f"Connection({shown})"


def normalize_type(conn_id: str, conn_type: str) -> str:
    """Lower case, ``-`` as ``_`` (``google-cloud`` -> ``google_cloud``)."""
    if not isinstance(conn_type, str) or not conn_type.strip():
        raise InvalidConnectionError(conn_id, "conn_type is empty")
    return conn_type.strip().lower().replace("-", "_")


def parse_port(conn_id: str, port: Any) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise InvalidConnectionError(conn_id, f"port {port!r} is not a number") from None
    if not 0 <= value <= 65535:
        raise InvalidConnectionError(conn_id, f"port {value} is not in 0-65535")
    return value


def parse_extra(conn_id: str, text: str | None) -> dict[str, Any]:
    """An extra given as JSON text; it must be an object."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidConnectionError(conn_id, f"extra is not valid JSON: {exc.msg} at "
                                              f"position {exc.pos}") from None
    if not isinstance(value, dict):
        raise InvalidConnectionError(conn_id, f"extra must be a JSON object, got "
                                              f"{type(value).__name__}")
    return value


def _query_extras(conn_id: str, query: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == EXTRA_PARAM:
            extra.update(parse_extra(conn_id, value))
        elif key in extra:  # a repeated parameter is a list
            previous = extra[key]
            extra[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            extra[key] = value
    return extra


def _query_string(extra: dict[str, Any]) -> str:
    if not extra:
        return ""
    if all(isinstance(v, str) for v in extra.values()):
        return "?" + urlencode(extra)
    return "?" + urlencode({EXTRA_PARAM: json.dumps(extra, sort_keys=True)})
