"""``WebhookNotifier`` (JSON POST to a URL) and ``SlackNotifier`` (Slack incoming webhook)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mlpipe.errors import NotificationError
from mlpipe.masking import is_sensitive_name, mask_secret, redact
from mlpipe.notifications.base import (
    DEFAULT_BASE_URL,
    BaseNotifier,
    check_timeout,
    log,
    message_fields,
    render_text,
)

__all__ = ["SlackNotifier", "WebhookNotifier", "post_json"]

_DEFAULT_TEXT = ("mlpipe: {dag_id}.{task_id} is {state} (run {run_id}, try {try_number}) "
                 "{exception}")
_MAX_HEADER = 8 * 1024


def check_url(owner: str, url: object) -> str:
    """An http(s) URL with a host; one clear line otherwise."""
    if not isinstance(url, str) or any(c in url for c in "\r\n\t "):
        raise NotificationError(f"{owner}: url must be an http(s) URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotificationError(f"{owner}: url must be an http(s) URL with a host, got "
                                f"{redact(url)!r}")
    return url


def post_json(url: str, body: dict[str, Any], *, headers: Mapping[str, str],
              timeout: float) -> int:
    """POST ``body`` as JSON; the status, or ``NotificationError`` for a refusal or no
    answer within ``timeout`` (the response body is not read beyond 64 KiB)."""
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "mlpipe-notifier", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise NotificationError(f"POST {redact(_where(url))} answered {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotificationError(f"POST {redact(_where(url))} failed: {reason}") from None


def _where(url: str) -> str:
    """The URL without its path (a webhook's path is often its secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


class WebhookNotifier(BaseNotifier):
    """POSTs JSON ``{dag_id, run_id, task_id, state, try_number, log_url, exception,
    reason}`` to ``url`` (with ``headers``), giving up after ``timeout`` seconds."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None,
                 timeout: float = 10, *, base_url: str = DEFAULT_BASE_URL) -> None:
        self.url = check_url("WebhookNotifier", url)
        self.headers = _check_headers(headers or {})
        self.timeout = check_timeout("WebhookNotifier", timeout)
        self.base_url = base_url

    def notify(self, context: dict[str, Any]) -> None:
        body = message_fields(context, base_url=self.base_url)
        status = post_json(self.url, body, headers=self.headers, timeout=self.timeout)
        log.info("WebhookNotifier: %s answered %d", _where(self.url), status)

    def __repr__(self) -> str:
        return f"WebhookNotifier({_where(self.url)!r})"


class SlackNotifier(BaseNotifier):
    """Posts ``{"text": ...}`` to the Slack incoming webhook of connection
    ``slack_conn_id``: its ``password`` is the webhook URL, or the path after ``host``
    (``https://hooks.slack.com/services`` by default). ``text`` is a Jinja template over
    the message fields (``{{ dag_id }}``, ``{{ state }}``...)."""

    def __init__(self, slack_conn_id: str = "slack_default", text: str | None = None, *,
                 channel: str | None = None, username: str | None = None,
                 timeout: float = 10, base_url: str = DEFAULT_BASE_URL) -> None:
        if not isinstance(slack_conn_id, str) or not slack_conn_id:
            raise NotificationError(f"SlackNotifier: slack_conn_id must be a connection id, "
                                    f"got {slack_conn_id!r}")
        self.slack_conn_id = slack_conn_id
        self.text = text
        self.channel = channel
        self.username = username
        self.timeout = check_timeout("SlackNotifier", timeout)
        self.base_url = base_url

    def webhook_url(self) -> str:
        from mlpipe.connections import get_connection

        conn = get_connection(self.slack_conn_id)
        secret = conn.password or ""
        if secret:
            mask_secret(secret)
        if secret.startswith(("http://", "https://")):
            url = secret
        else:
            host = conn.host or "hooks.slack.com/services"
            if not host.startswith(("http://", "https://")):
                port = f":{conn.port}" if conn.port else ""
                host = f"https://{host.rstrip('/')}{port}"
            url = f"{host.rstrip('/')}/{secret.lstrip('/')}" if secret else host
        return check_url(f"SlackNotifier({self.slack_conn_id!r})", url)

    def notify(self, context: dict[str, Any]) -> None:
        fields = message_fields(context, base_url=self.base_url)
        body: dict[str, Any] = {"text": render_text(self.text, fields, _DEFAULT_TEXT).strip()}
        if self.channel:
            body["channel"] = self.channel
        if self.username:
            body["username"] = self.username
        post_json(self.webhook_url(), body, headers={}, timeout=self.timeout)


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name \
                or any(c in name + value for c in "\r\n") or len(name + value) > _MAX_HEADER:
            raise NotificationError(f"WebhookNotifier: header {name!r} must be a name and a "
                                    "one-line text value")
        if name.lower() == "authorization" or is_sensitive_name(name):
            mask_secret(value)
        checked[name] = value
    return checked
