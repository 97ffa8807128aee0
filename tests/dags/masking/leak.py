"""A task that reads a connection and hands its password on; another that logs what it got."""

import hashlib
import os
from pathlib import Path

from mlpipe import DAG, task
from mlpipe.connections import get_connection

with DAG("leak") as dag:

    @task
    def fetch() -> dict:
        password = get_connection("db").password
        print("the password is", password)
        return {"password": password, "note": f"user u with {password}", "n": 3}

    @task
    def show(value: dict) -> None:
        print("got", value)
        digest = hashlib.sha256(value["password"].encode()).hexdigest()
        Path(os.environ["LEAK_TEST_OUT"]).write_text(digest)

    show(fetch())
