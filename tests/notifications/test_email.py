"""EmailNotifier through smtplib to a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlpipe import DAG
from mlpipe.notifications import EmailNotifier
from mlpipe.operators import PythonOperator

START = datetime(2026, 1, 1, tzinfo=UTC)


def _kaput() -> None:
    raise RuntimeError("kaput")


def test_a_failed_task_emails_every_recipient(smtp_server: tuple[int, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    port, mailbox = smtp_server
    monkeypatch.setenv("MLPIPE_CONN_SMTP_TEST", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
         "extra": {"from_email": "pipelines@example.com"}}))
    notifier = EmailNotifier(["ops@example.com", "ml@example.com"], smtp_conn_id="smtp_test",
                             subject="{{ dag_id }}.{{ task_id }} {{ state }}")
    with DAG("mailed", start_date=START) as dag:
        PythonOperator("crash", python_callable=_kaput, on_failure_callback=notifier)
    run = dag.test()

    assert run.state == "failed"
    [(sender, recipients, message)] = mailbox.wait_for(1)
    assert sender == "pipelines@example.com"
    assert recipients == ["ops@example.com", "ml@example.com"]
    assert message["Subject"] == "mailed.crash failed"
    assert message["To"] == "ops@example.com, ml@example.com"
    body = message.get_payload()
    assert "task_id: crash" in body and "exception: RuntimeError: kaput" in body
    assert f"run_id: {run.run_id}" in body and "try_number: 1" in body
    assert "EmailNotifier: sent 'mailed.crash failed' to 2 recipient(s)" in \
        run.get_task_instance("crash").log


def test_an_email_that_cannot_be_sent_is_logged_and_the_task_still_succeeds(
        smtp_server: tuple[int, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    port, mailbox = smtp_server
    # TLS spoken to a plain SMTP server: the handshake fails
    monkeypatch.setenv("MLPIPE_CONN_SMTP_TLS", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "password": "smtp-pass-123",
         "login": "me", "extra": {"ssl": True, "timeout": 2}}))
    with DAG("unmailed", start_date=START) as dag:
        PythonOperator("fine", python_callable=lambda: 1,
                       on_success_callback=EmailNotifier("ops@example.com",
                                                         smtp_conn_id="smtp_tls"))
    run = dag.test()

    ti = run.get_task_instance("fine")
    assert run.state == "success" and ti.state == "success"
    assert (f"EmailNotifier failed: NotificationError: email via 'smtp_tls' (127.0.0.1:{port}) "
            "failed:") in ti.log
    assert "smtp-pass-123" not in ti.log
    assert mailbox.messages == []
