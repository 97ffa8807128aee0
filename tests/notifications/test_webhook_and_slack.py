"""WebhookNotifier and SlackNotifier against a real local HTTP server, used as task and
DAG callbacks in real runs; failing and slow endpoints never change a task's state."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from mlpipe import DAG
from mlpipe.errors import NotificationError
from mlpipe.notifications import EmailNotifier, SlackNotifier, WebhookNotifier
from mlpipe.operators import PythonOperator

START = datetime(2026, 1, 1, tzinfo=UTC)


def _boom() -> None:
    raise RuntimeError("boom: the data is bad\nsecond line")


def test_a_failed_task_posts_its_fields_as_json(webhook_server: tuple[str, Any]) -> None:
    base, received = webhook_server
    notifier = WebhookNotifier(f"{base}/hook", headers={"Authorization": "Bearer tok-secret"})
    with DAG("hooked", start_date=START) as dag:
        PythonOperator("fails", python_callable=_boom, on_failure_callback=notifier)
    run = dag.test()

    assert run.state == "failed"
    [(path, headers, body)] = received.wait_for(1)
    assert path == "/hook" and headers["Authorization"] == "Bearer tok-secret"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "dag_id": "hooked", "run_id": run.run_id, "task_id": "fails", "state": "failed",
        "try_number": 1, "reason": None,
        "exception": "RuntimeError: boom: the data is bad",
        "log_url": f"http://127.0.0.1:8080/api/v1/dags/hooked/dagRuns/{run.run_id}/"
                   "taskInstances/fails/logs/1"}


def test_retry_and_success_callbacks_take_lists_of_notifiers_and_functions(
        webhook_server: tuple[str, Any]) -> None:
    base, received = webhook_server
    calls: list[str] = []
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first try fails")
        return "ok"

    with DAG("listed", start_date=START) as dag:
        PythonOperator("flaky", python_callable=flaky, retries=1, retry_delay=0,
                       on_retry_callback=[WebhookNotifier(f"{base}/retry"),
                                          lambda c: calls.append("retry")],
                       on_success_callback=[WebhookNotifier(f"{base}/ok"),
                                            lambda c: calls.append(c["ti"].state)])
    run = dag.test()

    assert run.state == "success"
    posts = received.wait_for(2)
    assert [(p, b["state"], b["try_number"]) for p, _, b in posts] == [
        ("/retry", "up_for_retry", 1), ("/ok", "success", 2)]
    assert posts[0][2]["exception"] == "ValueError: first try fails"
    assert calls == ["retry", "success"]


def test_failing_or_slow_notifiers_are_logged_masked_and_change_nothing(
        webhook_server: tuple[str, Any]) -> None:
    base, received = webhook_server
    with DAG("unlucky", start_date=START) as dag:
        PythonOperator("works", python_callable=lambda: 1, on_success_callback=[
            WebhookNotifier(f"{base}/fail/hook-secret-path"),
            WebhookNotifier(f"{base}/slow", timeout=0.5),
            WebhookNotifier("http://127.0.0.1:9/nothing-listens", timeout=1)])
    started = time.monotonic()
    run = dag.test()
    elapsed = time.monotonic() - started

    ti = run.get_task_instance("works")
    assert run.state == "success" and ti.state == "success"
    assert (f"WebhookNotifier failed: NotificationError: POST {base}/... answered 500"
            in ti.log)
    assert f"WebhookNotifier failed: NotificationError: POST {base}/... failed: timed out" \
        in ti.log
    assert "POST http://127.0.0.1:9/... failed:" in ti.log
    assert "hook-secret-path" not in ti.log  # a webhook's path is often its secret
    assert elapsed < 2.9  # the slow endpoint (3 s) was not waited for
    assert len(received.wait_for(2)) == 2


def test_slack_notifier_posts_text_to_the_connections_webhook(
        webhook_server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    base, received = webhook_server
    monkeypatch.setenv("MLPIPE_CONN_SLACK_TEST", json.dumps(
        {"conn_type": "slackwebhook", "host": f"{base}/services",
         "password": "T000/B000/slacksecret"}))
    monkeypatch.setenv("MLPIPE_CONN_SLACK_BROKEN", json.dumps(
        {"conn_type": "slackwebhook", "host": f"{base}/fail", "password": "T1/B1/othersecret"}))
    ran: list[str] = []
    with DAG("slacked", start_date=START, on_failure_callback=[
            SlackNotifier("slack_test", text="{{ dag_id }} run {{ run_id }} is {{ state }}",
                          channel="#ml"),
            SlackNotifier("slack_broken"),
            lambda c: ran.append(c["reason"])]) as dag:
        PythonOperator("fails", python_callable=_boom,
                       on_failure_callback=SlackNotifier("slack_test"))
    run = dag.test()

    assert run.state == "failed" and ran == ["task_failure"]
    posts = received.wait_for(3)
    by_path = {p: b for p, _, b in posts}
    assert by_path["/services/T000/B000/slacksecret"] in (
        {"text": f"slacked run {run.run_id} is failed", "channel": "#ml"},
        {"text": f"mlpipe: slacked.fails is failed (run {run.run_id}, try 1) "
                 "RuntimeError: boom: the data is bad"})
    texts = sorted(b["text"] for p, _, b in posts if p.startswith("/services/"))
    assert texts == sorted([f"slacked run {run.run_id} is failed",
                            f"mlpipe: slacked.fails is failed (run {run.run_id}, try 1) "
                            "RuntimeError: boom: the data is bad"])


def test_a_missing_slack_connection_is_logged_not_raised() -> None:
    with DAG("no_conn", start_date=START) as dag:
        PythonOperator("t", python_callable=lambda: 1,
                       on_success_callback=SlackNotifier("slack_nowhere"))
    run = dag.test()
    assert run.state == "success"
    assert "SlackNotifier failed: ConnectionNotFoundError" in run.get_task_instance("t").log


@pytest.mark.parametrize(("build", "message"), [
    (lambda: WebhookNotifier("ftp://example.com/x"),
     r"^WebhookNotifier: url must be an http\(s\) URL with a host, got 'ftp://example.com/x'$"),
    (lambda: WebhookNotifier("not a url"), r"url must be an http\(s\) URL, got 'not a url'"),
    (lambda: WebhookNotifier("http:///path"), r"url must be an http\(s\) URL with a host"),
    (lambda: WebhookNotifier("http://h/x", headers={"X-A": "1\r\nX-B: 2"}),
     r"header 'X-A' must be a name and a one-line text value"),
    (lambda: WebhookNotifier("http://h/x", timeout=0), r"timeout must be seconds in \(0, 300\]"),
    (lambda: WebhookNotifier("http://h/x", timeout=1000), r"got 1000"),
    (lambda: SlackNotifier(""), r"slack_conn_id must be a connection id"),
    (lambda: EmailNotifier("not-an-address"), r"'not-an-address' is not an email address"),
    (lambda: EmailNotifier("a@example.com\nBcc: b@example.com"), r"is not an email address"),
    (lambda: EmailNotifier([]), r"to must name 1 to 100 addresses"),
    (lambda: EmailNotifier("a@example.com", subject="two\nlines"), r"subject must be one line"),
])
def test_bad_notifier_arguments_are_one_clear_line(build: Any, message: str) -> None:
    with pytest.raises(NotificationError, match=message) as info:
        build()
    assert "\n" not in str(info.value)
