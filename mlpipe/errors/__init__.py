"""Every error mlpipe raises on purpose: one tree, defined in this package.

The hierarchy::

    MlpipeError
    ├── DagDefinitionError            a DAG or task is defined wrongly (raised while authoring)
    │   ├── CycleError                    the dependencies form a loop; ``.cycle`` lists it
    │   ├── DuplicateTaskIdError          two tasks of one DAG share an id
    │   ├── InvalidTaskIdError            a task or group id has illegal characters
    │   ├── InvalidTriggerRuleError       an unknown trigger rule
    │   ├── InvalidOperatorArgumentError  an operator got an argument it does not take
    │   ├── MappingError                  ``.expand()`` got something it cannot map over
    │   ├── TaskAlreadyInDagError         one task object used in two DAGs
    │   ├── TaskOutsideDagError           a ``@task`` called with no DAG around it
    │   ├── ParamValidationError          a ``Param`` default or a run's conf fails its schema
    │   ├── ScheduleError                 a schedule that cannot be used (bad cron string)
    │   └── InvalidDatasetError           a ``Dataset`` URI, extra or condition is unusable
    ├── InvalidArtifactError              an artifact reference or path part is unusable
    ├── DagNotFoundError                  no DAG with that id in the dags folder
    ├── TaskNotFoundError                 no task with that id in the DAG
    ├── DagImportError                    a DAG file failed to import
    ├── SettingsError                     a setting has a value that cannot be used
    ├── StoreError                        the metadata database cannot be used as asked
    │   ├── RunNotFoundError                  no DAG run with that id
    │   ├── RunExistsError                    a DAG run with that id exists already
    │   └── UserError                         a web user is unknown, exists, or has a bad role
    ├── TaskError                         raised inside a running task instance
    │   ├── TaskTimeoutError                  ``execution_timeout`` ran out
    │   ├── XComError                         a value cannot be stored or found as XCom
    │   ├── TemplateRenderError               a Jinja template failed to render
    │   ├── TaskSkipped                       a task asks to be marked skipped (like Airflow's)
    │   ├── TaskRescheduled                   a sensor ends its poke, to poke again later
    │   ├── SensorTimeoutError                a sensor waited longer than its ``timeout``
    │   ├── ExpansionError                    a mapped task's input is not a list
    │   ├── DeployError                       a deployment failed (the alias was moved back)
    │   ├── CorruptImageError                 an image cannot be decoded (on_corrupt="fail")
    │   └── S3OperatorError                   an S3 operator failed (bucket, prefix, connection)
    │       ├── S3BucketNotFoundError             the source bucket does not exist
    │       ├── S3EmptyPrefixError                nothing (matching) under the prefix
    │       └── S3CredentialsError                credentials refused or endpoint unreachable
    ├── ArtifactNotRecordedError          no task recorded an artifact at that URI
    ├── ArtifactError                     an artifact cannot be read, written or found
    │   ├── ArtifactNotFoundError             nothing (complete) exists at the URI
    │   └── UnknownSchemeError                no store is registered for the URI's scheme
    ├── S3UriError                        a value is not an ``s3://BUCKET/KEY`` URL
    ├── ConnectionsError                  connections, variables, secrets and hooks
    │   ├── ConnectionNotFoundError           no connection has that id; lists the known
    │   ├── ConnectionExistsError             ``connections add`` of a stored id
    │   ├── InvalidConnectionError            a connection URI, JSON or extra cannot be parsed
    │   ├── VariableNotFoundError             no variable has that key; lists the known
    │   ├── FernetKeyError                    ``MLPIPE_FERNET_KEY`` is not a usable key
    │   ├── DecryptionError                   a stored secret cannot be decrypted
    │   ├── HookError                         a call through a hook failed
    │   │   └── ConnectionFailedError             cannot connect or authenticate
    │   └── NotificationError                 a notifier is misconfigured or its send failed
    ├── PipelineConfigError               a pipeline's YAML config has bad values
    ├── ConfigError                       a training config cannot be used (field paths)
    ├── DatasetError                      a data set cannot be built or read
    ├── WeightsError                      pretrained weights cannot be found or loaded
    ├── DistributedTrainingError          the torchrun workers of a training run failed
    ├── ModelRegistryError                unknown model, version or alias
    ├── ServeError                        ``mlpipe serve`` cannot serve what it was given
    ├── ServingError                      the serving endpoint is unreachable or failed
    ├── ModelNotReadyError                no model loaded yet
    └── BodyTooLargeError                 a request body passed the serving limit

The modules: ``base`` (the root), ``authoring``, ``engine``, ``storage``, ``connections``
and ``ml``. Messages name the offender, list the valid options sorted, and say how to fix
it. This package imports only the standard library and ``mlpipe.masking``.
"""

from __future__ import annotations

from mlpipe.errors.authoring import (
    CycleError,
    DagDefinitionError,
    DagImportError,
    DagNotFoundError,
    DuplicateTaskIdError,
    InvalidArtifactError,
    InvalidDatasetError,
    InvalidOperatorArgumentError,
    InvalidTaskIdError,
    InvalidTriggerRuleError,
    MappingError,
    ParamValidationError,
    ScheduleError,
    TaskAlreadyInDagError,
    TaskNotFoundError,
    TaskOutsideDagError,
)
from mlpipe.errors.base import MlpipeError, did_you_mean
from mlpipe.errors.connections import (
    ConnectionExistsError,
    ConnectionFailedError,
    ConnectionNotFoundError,
    ConnectionsError,
    DecryptionError,
    FernetKeyError,
    HookError,
    InvalidConnectionError,
    NotificationError,
    VariableNotFoundError,
)
from mlpipe.errors.engine import (
    ArtifactNotRecordedError,
    ExpansionError,
    RunExistsError,
    RunNotFoundError,
    SensorTimeoutError,
    SettingsError,
    StoreError,
    TaskError,
    TaskRescheduled,
    TaskSkipped,
    TaskTimeoutError,
    TemplateRenderError,
    UserError,
    XComError,
)
from mlpipe.errors.ml import (
    BodyTooLargeError,
    ConfigError,
    CorruptImageError,
    DatasetError,
    DeployError,
    DistributedTrainingError,
    ModelNotReadyError,
    ModelRegistryError,
    PipelineConfigError,
    S3BucketNotFoundError,
    S3CredentialsError,
    S3EmptyPrefixError,
    S3OperatorError,
    ServeError,
    ServingError,
    WeightsError,
)
from mlpipe.errors.storage import (
    ArtifactError,
    ArtifactNotFoundError,
    S3UriError,
    UnknownSchemeError,
)

__all__ = [
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactNotRecordedError",
    "BodyTooLargeError",
    "ConfigError",
    "ConnectionExistsError",
    "ConnectionFailedError",
    "ConnectionNotFoundError",
    "ConnectionsError",
    "CorruptImageError",
    "CycleError",
    "DagDefinitionError",
    "DagImportError",
    "DagNotFoundError",
    "DatasetError",
    "DecryptionError",
    "DeployError",
    "DistributedTrainingError",
    "DuplicateTaskIdError",
    "ExpansionError",
    "FernetKeyError",
    "HookError",
    "InvalidArtifactError",
    "InvalidConnectionError",
    "InvalidDatasetError",
    "InvalidOperatorArgumentError",
    "InvalidTaskIdError",
    "InvalidTriggerRuleError",
    "MappingError",
    "MlpipeError",
    "ModelNotReadyError",
    "ModelRegistryError",
    "NotificationError",
    "ParamValidationError",
    "PipelineConfigError",
    "RunExistsError",
    "RunNotFoundError",
    "S3BucketNotFoundError",
    "S3CredentialsError",
    "S3EmptyPrefixError",
    "S3OperatorError",
    "S3UriError",
    "ScheduleError",
    "SensorTimeoutError",
    "ServeError",
    "ServingError",
    "SettingsError",
    "StoreError",
    "TaskAlreadyInDagError",
    "TaskError",
    "TaskNotFoundError",
    "TaskOutsideDagError",
    "TaskRescheduled",
    "TaskSkipped",
    "TaskTimeoutError",
    "TemplateRenderError",
    "UnknownSchemeError",
    "UserError",
    "VariableNotFoundError",
    "WeightsError",
    "XComError",
    "did_you_mean",
]
