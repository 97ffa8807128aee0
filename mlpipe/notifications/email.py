"""``EmailNotifier``: an email through an SMTP connection (``smtplib``)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from mlpipe.errors import NotificationError
from mlpipe.masking import mask_secret
from mlpipe.notifications.base import (
    DEFAULT_BASE_URL,
    BaseNotifier,
    check_timeout,
    log,
    message_fields,
    render_text,
)

__all__ = ["EmailNotifier"]

_SUBJECT = "[mlpipe] {dag_id}.{task_id}: {state}"
_MAX_RECIPIENTS = 100


class EmailNotifier(BaseNotifier):
    """Sends a plain-text email to ``to`` through connection ``smtp_conn_id``: ``host``,
    ``port`` (default 25), ``login``/``password`` (if set, the notifier logs in). Extras:
    ``ssl`` (SMTP over TLS; default true on port 465), ``starttls`` (default true on port
    587), ``from_email`` (default ``mlpipe@<host>``), ``timeout`` (seconds, default 10),
    ``local_hostname`` (the EHLO name, default ``localhost``).
    ``subject`` and ``html_content`` are Jinja templates over the message fields.
    """

    def __init__(self, to: str | Sequence[str], smtp_conn_id: str = "smtp_default",
                 subject: str | None = None, *, html_content: str | None = None,
                 from_email: str | None = None, base_url: str = DEFAULT_BASE_URL) -> None:
        recipients = [to] if isinstance(to, str) else list(to)
        if not recipients or len(recipients) > _MAX_RECIPIENTS:
            raise NotificationError(f"EmailNotifier: to must name 1 to {_MAX_RECIPIENTS} "
                                    f"addresses, got {to!r}")
        self.to = [_address(r) for r in recipients]
        self.from_email = _address(from_email) if from_email else None
        if subject is not None and ("\r" in subject or "\n" in subject):
            raise NotificationError("EmailNotifier: subject must be one line")
        self.smtp_conn_id = smtp_conn_id
        self.subject = subject
        self.html_content = html_content
        self.base_url = base_url

    def build_message(self, context: dict[str, Any], sender: str) -> EmailMessage:
        fields = message_fields(context, base_url=self.base_url)
        subject = render_text(self.subject, fields, _SUBJECT)
        message = EmailMessage()
        message["Subject"] = " ".join(subject.split())[:200]  # one header line
        message["From"] = sender
        message["To"] = ", ".join(self.to)
        message.set_content("\n".join(f"{k}: {v}" for k, v in fields.items() if v is not None))
        if self.html_content is not None:
            from markupsafe import escape

            safe = {k: escape(v) if isinstance(v, str) else v for k, v in fields.items()}
            message.add_alternative(render_text(self.html_content, safe, ""), subtype="html")
        return message

    def notify(self, context: dict[str, Any]) -> None:
        from mlpipe.connections import get_connection

        conn = get_connection(self.smtp_conn_id)
        extra = conn.extra or {}
        host, port = conn.host or "127.0.0.1", int(conn.port or 25)
        use_ssl = _flag(extra.get("ssl"), default=port == 465)
        starttls = _flag(extra.get("starttls"), default=port == 587)
        timeout = check_timeout("EmailNotifier", float(extra.get("timeout", 10)))
        sender = self.from_email or _address(str(extra.get("from_email") or f"mlpipe@{host}"))
        message = self.build_message(context, sender)
        if conn.password:
            mask_secret(conn.password)
        smtp_class = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
        try:
            # EHLO name given: smtplib's default (getfqdn) can wait seconds on DNS
            local = str(extra.get("local_hostname") or "localhost")
            with smtp_class(host, port, timeout=timeout, local_hostname=local) as smtp:
                if starttls and not use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if conn.login:
                    smtp.login(conn.login, conn.password or "")
                smtp.send_message(message, from_addr=sender, to_addrs=self.to)
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationError(f"email via {self.smtp_conn_id!r} ({host}:{port}) "
                                    f"failed: {exc}") from None
        log.info("EmailNotifier: sent %r to %d recipient(s)", message["Subject"], len(self.to))


def _address(value: object) -> str:
    """One email address, checked (no header injection); one clear line otherwise."""
    text = str(value) if isinstance(value, str) else ""
    _, address = parseaddr(text)
    if not text or any(c in text for c in "\r\n") or "@" not in address \
            or address != text.strip() or len(address) > 254:
        raise NotificationError(f"EmailNotifier: {value!r} is not an email address")
    return address


def _flag(value: object, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
