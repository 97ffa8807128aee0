"""Secrets are ``***`` in task logs: the masker, the redacting sink, and a real ``dag.test``."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import pytest

from mlpipe import DAG, task
from mlpipe.connections import get_connection, is_sensitive_name, mask_secret
from mlpipe.masking import SecretsMasker
from mlpipe.operators import BashOperator
from mlpipe.runtime.log_capture import capture_task_output

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def test_the_masker_replaces_secrets_and_their_url_encoded_forms() -> None:
    masker = SecretsMasker()
    masker.add("p@ss/word")
    masker.add("ab")  # too short to mask without mangling ordinary text
    masker.add(None)

    assert masker.redact("p@ss/word p%40ss%2Fword p%40ss%2Fword ab") == "*** *** *** ab"
    assert "ab" not in masker


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    masker = SecretsMasker()
    masker.add("token")
    masker.add("token-extended")

    assert masker.redact("token-extended token") == "*** ***"


@pytest.mark.parametrize(("name", "sensitive"), [
    ("password", True), ("AWS_SECRET_ACCESS_KEY", True), ("gh_Token", True),
    ("api_key", True), ("region_name", False), ("endpoint_url", False),
])
def test_sensitive_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_name(name) is sensitive


def test_captured_output_is_redacted(secret: str) -> None:
    mask_secret(secret)
    sink = io.StringIO()

    with capture_task_output(sink):
        print(f"printed {secret}")
        logging.getLogger("t").warning("logged %s", secret)

    assert secret not in sink.getvalue()
    assert "printed ***" in sink.getvalue() and "logged ***" in sink.getvalue()


def test_a_task_printing_connection_secrets_leaves_only_stars_in_its_log(
        monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("MLPIPE_CONN_MINIO",
                       f"s3://AKIA-LOGIN:{secret}@/?aws_session_token=session-{secret}")
    monkeypatch.setenv("MLPIPE_VAR_DEPLOY_TOKEN", f"deploy-{secret}")

    with DAG("masking", start_date=LOGICAL) as dag:

        @task
        def leak(var=None) -> str:
            conn = get_connection("minio")
            print("password:", conn.password)
            logging.getLogger("leaky").info("extra: %s", conn.extra)
            print("token:", var.value.deploy_token)
            return "done"

        leak() >> BashOperator(task_id="echo", bash_command=f"echo again {secret}")

    run = dag.test(LOGICAL)

    assert run.state == "success", run.get_task_instance("leak").log
    log = run.get_task_instance("leak").log
    assert secret not in log
    assert "password: ***" in log
    assert "'aws_session_token': '***'" in log
    assert "token: ***" in log
    echo_log = run.get_task_instance("echo").log
    assert secret not in echo_log and "again ***" in echo_log
