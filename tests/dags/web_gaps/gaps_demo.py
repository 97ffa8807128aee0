"""DAGs for the web UI's dataset, sensor and SLA views: ``gaps_ingest`` produces a dataset
(and logs a line, for the remote-log page), ``gaps_train`` is scheduled on it and on an S3
prefix, ``gaps_sensor`` waits in reschedule mode past its task SLA."""

from datetime import timedelta

from mlpipe import DAG, Dataset
from mlpipe.operators import PythonOperator
from mlpipe.sensors import PythonSensor

RAW = Dataset("s3://lake/raw/")
LABELS = Dataset("s3://lake/labels/")

with DAG("gaps_ingest", schedule=None) as ingest:
    PythonOperator("land", python_callable=lambda: print("landed 3 images on this machine"),
                   outlets=[RAW])

with DAG("gaps_train", schedule=[RAW, LABELS], description="retrains on new data") as train:
    PythonOperator("fit", python_callable=lambda: "fitted")

with DAG("gaps_sensor", schedule=None) as sensor:
    PythonSensor("wait", python_callable=lambda: False, mode="reschedule", poke_interval=300,
                 timeout=3600, sla=timedelta(milliseconds=10))
