"""``mlpipe serve``: a real server process answering real HTTP requests, following an alias."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import ServeProcess, Server
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.tracking.models import register_model, set_alias

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, data in files:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                   f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n".encode())
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def digit_pngs(tmp_path: Path, count: int) -> list[tuple[str, bytes, str]]:
    """(file name, PNG bytes, true label) of real digits."""
    from mlpipe.ml.datasets import write_digits_pngs

    write_digits_pngs(tmp_path / "digits", limit=count)
    return [(p.name, p.read_bytes(), p.parent.name)
            for p in sorted((tmp_path / "digits").rglob("*.png"))]


def predict(server: Server, files: list[tuple[str, bytes]]) -> tuple[int, dict[str, Any]]:
    body, headers = multipart(files)
    return server.request("POST", "/predict", body, headers)


def test_a_fixed_version_answers_predict_health_and_metadata(
        trained_models: dict[str, Any], serve_process: ServeProcess, tmp_path: Path) -> None:
    uri = trained_models["tracking_uri"]
    version = register_model(uri, trained_models["good"], "serve_fixed", {})
    server = serve_process(f"models:/serve_fixed/{version}", uri)

    assert server.get("/health") == {"status": "ok", "model_uri": f"models:/serve_fixed/"
                                     f"{version}", "version": version}
    meta = server.get("/metadata")
    assert meta["version"] == version and meta["classes"] == [str(d) for d in range(10)]
    assert meta["image_size"] == [8, 8] and meta["grayscale"] is True

    digits = digit_pngs(tmp_path, 40)
    status, body = predict(server, [(name, data) for name, data, _ in digits])
    assert status == 200, body
    assert body["model_version"] == version
    assert [p["filename"] for p in body["predictions"]] == [name for name, _, _ in digits]
    for p in body["predictions"]:
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["probability"] == max(p["probabilities"].values())
    correct = sum(p["label"] == label for p, (_, _, label) in zip(body["predictions"], digits,
                                                                  strict=True))
    assert correct >= 30  # a trained model, most of 40 real digits right


def test_bad_payloads_get_a_4xx_naming_the_problem(
        trained_models: dict[str, Any], serve_process: ServeProcess, tmp_path: Path) -> None:
    uri = trained_models["tracking_uri"]
    version = register_model(uri, trained_models["good"], "serve_bad_input", {})
    server = serve_process(f"models:/serve_bad_input/{version}", uri)
    name, data, _ = digit_pngs(tmp_path, 1)[0]

    status, body = server.request("POST", "/predict", b"{}", {"Content-Type":
                                                               "application/json"})
    assert status == 415 and "multipart/form-data" in body["detail"]
    status, body = predict(server, [(name, data), ("notes.png", b"this is not an image")])
    assert status == 400 and body["detail"].startswith("file 'notes.png' is not a readable")
    status, body = predict(server, [(name, data[: len(data) // 2])])
    assert status == 400 and name in body["detail"]
    status, body = predict(server, [("empty.png", b"")])
    assert status == 400 and body["detail"] == "file 'empty.png' is empty"
    no_files, headers = multipart([])
    status, body = server.request("POST", "/predict", no_files, headers)
    assert status == 400 and "no image files" in body["detail"]


def test_it_waits_for_the_alias_then_follows_it_on_reload_and_by_polling(
        trained_models: dict[str, Any], serve_process: ServeProcess, tmp_path: Path) -> None:
    uri = trained_models["tracking_uri"]
    first = register_model(uri, trained_models["bad"], "serve_alias", {})
    second = register_model(uri, trained_models["good"], "serve_alias", {})
    server = serve_process("models:/serve_alias@production", uri, "--poll-interval", "0.5")

    status, body = server.request("GET", "/health")
    assert status == 503 and body["status"] == "waiting"
    assert "has no alias 'production'" in body["detail"]
    name, data, _ = digit_pngs(tmp_path, 1)[0]
    assert predict(server, [(name, data)])[0] == 503

    set_alias(uri, "serve_alias", "production", first)
    status, body = server.request("POST", "/reload")
    assert status == 200 and body["version"] == first
    assert predict(server, [(name, data)])[1]["model_version"] == first

    set_alias(uri, "serve_alias", "production", second)  # no reload: the poller sees it
    deadline = time.monotonic() + 30
    while server.get("/health")["version"] != second:
        assert time.monotonic() < deadline, "the server did not follow the alias"
        time.sleep(0.1)
    assert predict(server, [(name, data)])[1]["model_version"] == second


@pytest.mark.parametrize("bad", ["digits_classifier", "s3://bucket/model", "models:/"])
def test_serve_refuses_a_uri_it_cannot_serve(bad: str) -> None:
    result = CliRunner().invoke(app, ["serve", bad])
    assert result.exit_code == 1
    assert f"cannot serve {bad!r}: expected models:/<name>@<alias>" in result.output
    assert "Traceback" not in result.output


def test_serve_names_an_unknown_version(trained_models: dict[str, Any],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_models["tracking_uri"])
    result = CliRunner().invoke(app, ["serve", "models:/no_such_model/1"])
    assert result.exit_code == 1
    assert "cannot load 'models:/no_such_model/1'" in result.output
