"""``api_demo``: extract >> check >> load, with a ``rows`` param. ``extract`` prints the rows
and a secret variable's value; ``check`` fails when the conf says ``fail``."""

from __future__ import annotations

from mlpipe import DAG, Param
from mlpipe.operators import PythonOperator


def extract(params, conf):
    print(f"extracting {params['rows']} rows")
    if conf.get("token"):
        from mlpipe.masking import mask_secret

        mask_secret(conf["token"])
        print(f"using token {conf['token']}")
    return params["rows"]


def check(conf):
    if conf.get("fail"):
        raise ValueError("asked to fail")
    return "checked"


with DAG("api_demo", description="the web API's test DAG", tags=["web", "test"],
         params={"rows": Param(3, type="integer", minimum=1)}) as dag:
    PythonOperator(task_id="extract", python_callable=extract) >> \
        PythonOperator(task_id="check", python_callable=check) >> \
        PythonOperator(task_id="load", python_callable=lambda: "loaded")
