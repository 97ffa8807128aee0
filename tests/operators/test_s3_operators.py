"""``S3DownloadOperator`` and ``S3UploadOperator`` against a real moto S3 server.

The operators run inside ``dag.test()`` so the context and ``artifact_prefix`` are real.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import moto.settings
import pytest
from moto.server import ThreadedMotoServer

from mlpipe import DAG
from mlpipe.artifacts import Artifact, FileArtifactStore
from mlpipe.operators import S3DownloadOperator, S3UploadOperator
from mlpipe.operators.s3 import (
    S3BucketNotFoundError,
    S3CredentialsError,
    S3EmptyPrefixError,
    S3OperatorError,
)

LOGICAL = datetime(2024, 3, 1, tzinfo=UTC)
CLASSES = {"cats": 34, "dogs": 33, "birds": 32}  # 99 images + labels.txt = 100 objects
SECRET = "s3cr3t-value"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One moto S3 server for the module (each test uses its own bucket)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._server.server_port}"
    finally:
        server.stop()


def _conn_uri(endpoint: str, key: str = "k", secret: str = SECRET) -> str:
    return (f"s3://{key}:{secret}@/?endpoint_url={quote(endpoint, safe='')}"
            "&region_name=us-east-1")


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client on the server, with ``MLPIPE_CONN_AWS_DEFAULT`` pointing at it."""
    monkeypatch.setenv("MLPIPE_CONN_AWS_DEFAULT", _conn_uri(endpoint))
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="k", aws_secret_access_key=SECRET)


@pytest.fixture
def empty_bucket(s3: Any) -> str:
    """A fresh bucket with one object outside ``images/``."""
    name = f"data-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="other/unrelated.png", Body=b"x")
    return name


@pytest.fixture
def bucket(s3: Any, empty_bucket: str) -> str:
    """A fresh bucket holding ``images/<class>/<n>.png`` and ``images/labels.txt``."""
    objects = [(f"images/{label}/{n:03d}.png", f"{label}-{n}".encode())
               for label, count in CLASSES.items() for n in range(count)]
    objects.append(("images/labels.txt", b"cats\ndogs\nbirds\n"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda o: s3.put_object(Bucket=empty_bucket, Key=o[0], Body=o[1]),
                      objects))
    return empty_bucket


def _run_download(bucket: str, **kwargs: Any) -> tuple[Any, Any]:
    with DAG("s3_pull", start_date=LOGICAL) as dag:
        S3DownloadOperator(task_id="pull", source=f"s3://{bucket}/images/", max_workers=8,
                           **kwargs)
    run = dag.test()
    return run, run.get_task_instance("pull")


def _download(bucket: str, **kwargs: Any) -> tuple[Artifact, str]:
    """Run the download task; its returned Artifact and its log."""
    _, ti = _run_download(bucket, **kwargs)
    assert ti.state == "success", ti.log
    artifact = ti.xcom_pull(key="return_value")
    assert isinstance(artifact, Artifact)
    return artifact, ti.log


def _local(artifact: Artifact) -> Path:
    return Path(artifact.uri.removeprefix("file://"))


def test_first_run_downloads_every_object_with_its_layout_and_a_manifest(
        bucket: str, isolated_env: Path) -> None:
    run, ti = _run_download(bucket)
    assert ti.state == "success", ti.log
    artifact, log = ti.xcom_pull(key="return_value"), ti.log

    root = _local(artifact)
    assert root == (isolated_env / "artifacts" / "s3_pull" / "datasets" / "pull").resolve()
    assert sorted(p.name for p in root.iterdir()) == ["birds", "cats", "dogs", "labels.txt",
                                                      "manifest.json"]
    assert (root / "dogs" / "007.png").read_bytes() == b"dogs-7"
    assert len(list((root / "cats").iterdir())) == 34
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["source"] == f"s3://{bucket}/images/"
    entry = next(o for o in manifest["objects"] if o["path"] == "dogs/007.png")
    assert entry["key"] == "images/dogs/007.png"
    assert entry["size"] == 6
    assert entry["sha256"] == hashlib.sha256(b"dogs-7").hexdigest()
    assert entry["etag"] == hashlib.md5(b"dogs-7").hexdigest()
    assert len(manifest["objects"]) == 100
    # the reference matches the folder as the file store hashes it
    assert FileArtifactStore().stat(artifact.uri).sha256 == artifact.sha256
    assert artifact.kind == "dataset"
    assert artifact.extra["objects"] == 100
    assert artifact.extra["downloaded"] == 100
    # XCom carries the slim reference; lineage holds every source object with its ETag
    assert artifact.extra["sources_count"] == 100 and "sources" not in artifact.extra
    recorded = run.store.artifact_by_uri(artifact.uri)
    inputs = run.store.artifact_inputs(recorded["id"])
    assert len(inputs) == 100
    dog = next(i for i in inputs if i["uri"] == f"s3://{bucket}/images/dogs/007.png")
    assert (dog["etag"], dog["size"], dog["version_id"]) == (entry["etag"], 6, None)
    assert "downloaded 100, skipped 0 (unchanged), removed 0" in log
    # progress every tenth of the objects, with bytes (each object here is 6 bytes)
    progress = [line for line in log.splitlines() if " objects, " in line]
    assert len(progress) == 10
    assert "downloaded 10/100 objects, 0.0 MB of 0.0 MB" in progress[0]
    assert "downloaded 100/100 objects" in progress[-1]


def test_second_run_downloads_nothing_and_says_so(bucket: str) -> None:
    first, _ = _download(bucket)
    second, log = _download(bucket)

    assert "downloaded 0, skipped 100 (unchanged), removed 0" in log
    assert second.extra["downloaded"] == 0
    assert second.extra["skipped"] == 100
    assert second.sha256 == first.sha256
    assert second.uri == first.uri


def test_a_no_change_run_keeps_the_manifest_file_and_a_changed_source_rewrites_it(
        bucket: str, s3: Any, tmp_path: Path) -> None:
    dest = str(tmp_path / "mirror")
    first, _ = _download(bucket, dest=dest)
    manifest = _local(first) / "manifest.json"
    before = manifest.stat()

    second, _ = _download(bucket, dest=dest)  # nothing changed: the manifest is not rewritten
    after = manifest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.sha256 == first.sha256 == FileArtifactStore().stat(second.uri).sha256

    s3.put_object(Bucket=bucket, Key="images/cats/003.png", Body=b"another cat")
    third, _ = _download(bucket, dest=dest)
    assert manifest.stat().st_ino != before.st_ino  # replaced atomically
    entry = next(o for o in json.loads(manifest.read_text())["objects"]
                 if o["path"] == "cats/003.png")
    assert entry["sha256"] == hashlib.sha256(b"another cat").hexdigest()
    assert third.sha256 == FileArtifactStore().stat(third.uri).sha256 != first.sha256


def test_a_changed_object_is_downloaded_again_and_a_deleted_one_removed(
        bucket: str, s3: Any) -> None:
    first, _ = _download(bucket)
    s3.put_object(Bucket=bucket, Key="images/cats/003.png", Body=b"a new cat")
    s3.delete_object(Bucket=bucket, Key="images/birds/031.png")

    second, log = _download(bucket)

    root = _local(second)
    assert "downloaded 1, skipped 98 (unchanged), removed 1" in log
    assert (root / "cats" / "003.png").read_bytes() == b"a new cat"
    assert not (root / "birds" / "031.png").exists()
    assert second.sha256 != first.sha256
    assert FileArtifactStore().stat(second.uri).sha256 == second.sha256


def test_a_local_file_that_went_missing_is_fetched_again(bucket: str) -> None:
    first, _ = _download(bucket)
    (_local(first) / "dogs" / "000.png").unlink()

    _, log = _download(bucket)

    assert "downloaded 1, skipped 99 (unchanged), removed 0" in log
    assert (_local(first) / "dogs" / "000.png").read_bytes() == b"dogs-0"


def test_include_keeps_only_matching_objects(bucket: str, tmp_path: Path) -> None:
    artifact, log = _download(bucket, include="*.png", dest=str(tmp_path / "pngs"))

    root = _local(artifact)
    assert root == (tmp_path / "pngs").resolve()
    assert not (root / "labels.txt").exists()
    assert artifact.extra["objects"] == 99
    assert "downloaded 99, skipped 0 (unchanged), removed 0" in log


def test_without_incremental_everything_is_downloaded_again(bucket: str) -> None:
    _download(bucket)
    _, log = _download(bucket, incremental=False)

    assert "downloaded 100, skipped 0 (unchanged), removed 0" in log


@pytest.mark.parametrize(("source", "error", "match"), [
    ("s3://no-such-bucket-x/images/", S3BucketNotFoundError,
     r"bucket 'no-such-bucket-x' does not exist .*s3://no-such-bucket-x/images/ "
     r"\(connection 'aws_default'\)"),
    ("s3://{bucket}/nothing/here/", S3EmptyPrefixError,
     r"no objects under s3://{bucket}/nothing/here/ \(connection 'aws_default'\)"),
])
def test_missing_bucket_and_empty_prefix_fail_with_one_typed_line(
        empty_bucket: str, tmp_path: Path, source: str, error: type[Exception], match: str) -> None:
    op = S3DownloadOperator(task_id="pull", source=source.format(bucket=empty_bucket),
                            dest=str(tmp_path / "d"))

    with pytest.raises(error, match=match.format(bucket=empty_bucket)) as info:
        op.execute({})

    assert isinstance(info.value, S3OperatorError)
    assert "\n" not in str(info.value)


def test_include_that_matches_nothing_names_the_filter(bucket: str, tmp_path: Path) -> None:
    op = S3DownloadOperator(task_id="pull", source=f"s3://{bucket}/images/", include="*.jpg",
                            dest=str(tmp_path / "d"))

    with pytest.raises(S3EmptyPrefixError, match=r"no objects matching \['\*\.jpg'\]"):
        op.execute({})


def test_bad_credentials_fail_the_task_naming_bucket_prefix_and_connection(
        empty_bucket: str, endpoint: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys
    monkeypatch.setenv("MLPIPE_CONN_AWS_DEFAULT", _conn_uri(endpoint, key="AKIAWRONG"))

    run, ti = _run_download(empty_bucket)

    assert run.state == "failed"
    assert ti.error is not None
    assert ti.error.startswith("S3CredentialsError: cannot list "
                               f"s3://{empty_bucket}/images/ (connection 'aws_default'")
    assert "InvalidAccessKeyId" in ti.error
    assert "\n" not in ti.error
    assert SECRET not in ti.error
    assert SECRET not in ti.log
    op = S3DownloadOperator(task_id="pull", source=f"s3://{empty_bucket}/images/",
                            dest=str(tmp_path / "d"))
    with pytest.raises(S3CredentialsError, match=r"check the connection's access key id"):
        op.execute({})


def test_source_must_be_an_s3_url(tmp_path: Path) -> None:
    op = S3DownloadOperator(task_id="pull", source="/data/images", dest=str(tmp_path))

    with pytest.raises(S3OperatorError, match=r"source '/data/images' is not an s3:// URL"):
        op.execute({})


def test_upload_of_a_downloaded_folder_keeps_its_hash_and_is_idempotent(
        bucket: str, s3: Any) -> None:
    with DAG("s3_roundtrip", start_date=LOGICAL) as dag:
        pulled = S3DownloadOperator(task_id="pull", source=f"s3://{bucket}/images/")
        S3UploadOperator(task_id="push", source_uri=pulled.output,
                         dest=f"s3://{bucket}/copy/")

    uploads = []
    for _ in range(2):
        run = dag.test()
        assert run.state == "success", run.get_task_instance("push").log
        uploads.append(run.get_task_instance("push").xcom_pull(key="return_value"))
    downloaded = run.get_task_instance("pull").xcom_pull(key="return_value")

    first, second = uploads
    assert first.uri == second.uri == f"s3://{bucket}/copy/"
    assert first.sha256 == second.sha256 == downloaded.sha256
    assert first.kind == "dataset"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="copy/")["Contents"]]
    assert len(keys) == 101  # 100 objects + manifest.json, the same keys both times
    assert "copy/dogs/007.png" in keys
    assert s3.get_object(Bucket=bucket, Key="copy/dogs/007.png")["Body"].read() == b"dogs-7"


def test_upload_of_a_file_goes_under_the_prefix(empty_bucket: str, s3: Any,
                                                tmp_path: Path) -> None:
    bucket = empty_bucket
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    with DAG("s3_push", start_date=LOGICAL) as dag:
        S3UploadOperator(task_id="push", source_uri=model.as_uri(),
                         dest=f"s3://{bucket}/models/")

    results = []
    for _ in range(2):
        ti = dag.test().get_task_instance("push")
        assert ti.state == "success", ti.log
        results.append(ti.xcom_pull(key="return_value"))

    assert results[0].uri == results[1].uri == f"s3://{bucket}/models/model.bin"
    assert results[0].sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert results[0].sha256 == results[1].sha256
    assert results[0].kind == "file"
    assert results[0].extra["etag"]
    body = s3.get_object(Bucket=bucket, Key="models/model.bin")["Body"].read()
    assert body == model.read_bytes()


def test_upload_of_a_missing_source_fails_with_one_line(tmp_path: Path) -> None:
    op = S3UploadOperator(task_id="push", source_uri=str(tmp_path / "nope"),
                          dest="s3://any-bucket/x/")

    with pytest.raises(S3OperatorError, match=r"cannot upload '.*nope': no such file"):
        op.execute({})


def test_upload_to_a_missing_bucket_names_it(s3: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    op = S3UploadOperator(task_id="push", source_uri=str(tmp_path / "f.txt"),
                          dest="s3://no-such-bucket-y/x/")

    with pytest.raises(S3OperatorError,
                       match=r"upload of .* to 's3://no-such-bucket-y/x/f.txt' \(connection "
                             r"'aws_default'\) failed: .*NoSuchBucket"):
        op.execute({})


MODEL_FILES = {"MLmodel": b"flavors:\n  pytorch: {model_data: data}\n",
               "data/model.pth": bytes(range(256)) * 64, "requirements.txt": b"torch\n"}


@pytest.fixture(scope="module")
def registered_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Model 'tiny' version 1, alias 'prod', in a real SQLite MLflow store."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment("models", artifact_location=(root / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    for rel, data in MODEL_FILES.items():
        (root / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / rel).write_bytes(data)
    client.log_artifacts(run_id, str(root / "src"), "model")
    client.create_registered_model("tiny")
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version("tiny", source, run_id=run_id).version
    client.set_registered_model_alias("tiny", "prod", version)
    return {"tracking_uri": tracking_uri, "run_id": run_id, "root": str(root)}


@pytest.mark.parametrize("source", ["models:/tiny/1", "models:/tiny@prod",
                                    "runs:/{run_id}/model"])
def test_upload_of_a_model_puts_its_files_under_the_prefix(
        source: str, registered_model: dict[str, str], empty_bucket: str, s3: Any) -> None:
    uri = source.format(run_id=registered_model["run_id"])
    op = S3UploadOperator(task_id="push", source_uri=uri, dest=f"s3://{empty_bucket}/m/",
                          tracking_uri=registered_model["tracking_uri"])

    artifact = op.execute({})

    listed = s3.list_objects_v2(Bucket=empty_bucket, Prefix="m/")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["m/MLmodel", "m/data/model.pth",
                                                "m/requirements.txt"]
    body = s3.get_object(Bucket=empty_bucket, Key="m/data/model.pth")["Body"].read()
    assert body == MODEL_FILES["data/model.pth"]
    assert (artifact.uri, artifact.kind) == (f"s3://{empty_bucket}/m/", "model")
    assert artifact.extra["source"] == uri
    assert artifact.size == sum(len(data) for data in MODEL_FILES.values())


def test_a_dag_uploads_a_model_with_the_runs_tracking_store(
        registered_model: dict[str, str], empty_bucket: str, s3: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(Path(registered_model["root"]) / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered_model["tracking_uri"])
    with DAG("s3_push_model", start_date=LOGICAL) as dag:
        S3UploadOperator(task_id="push", source_uri="models:/tiny@prod",
                         dest=f"s3://{empty_bucket}/release/")

    ti = dag.test().get_task_instance("push")

    assert ti.state == "success", ti.log
    assert ti.xcom_pull(key="return_value").uri == f"s3://{empty_bucket}/release/"
    head = s3.head_object(Bucket=empty_bucket, Key="release/MLmodel")
    assert head["ContentLength"] == len(MODEL_FILES["MLmodel"])


@pytest.mark.parametrize(("source", "match"), [
    ("models:/tiny/7", r"cannot upload 'models:/tiny/7': artifact 'models:/tiny/7' does "
                       r"not exist \(.*\) \(tracking URI 'sqlite:"),
    ("models:/nope@prod", r"cannot upload 'models:/nope@prod': artifact .* does not exist"),
    ("http://host/model.bin", r"cannot upload 'http://host/model.bin': only local files"),
])
def test_upload_of_an_unknown_model_fails_with_one_line(
        source: str, match: str, registered_model: dict[str, str], tmp_path: Path) -> None:
    op = S3UploadOperator(task_id="push", source_uri=source, dest="s3://any-bucket/m/",
                          tracking_uri=registered_model["tracking_uri"])

    with pytest.raises(S3OperatorError, match=match) as caught:
        op.execute({})
    assert "\n" not in str(caught.value)


def test_importing_the_operators_does_not_import_boto3() -> None:
    code = ("import sys, mlpipe.operators as o; o.S3DownloadOperator; o.S3UploadOperator; "
            "print(sorted(m for m in ('boto3', 'botocore', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
