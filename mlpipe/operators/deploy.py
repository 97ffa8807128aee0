"""``DeployModelOperator``: champion/challenger gate, alias move, serving reload, smoke test,
rollback. Aliases only, never stages."""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, fields
from typing import Any

from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import DagDefinitionError, DeployError, TaskError, TaskSkipped
from mlpipe.operators.artifact_args import local_path

log = logging.getLogger("mlpipe.task")


_METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class DeployGate:
    """When a model version may take the alias.

    Attributes:
        metric: ``accuracy`` or ``macro_f1``, computed by the deploy task on ``split`` of the
            data set for the challenger and the current alias holder alike.
        threshold: the challenger's metric must be at least this (0 to 1).
        beat_current: the challenger must also beat the current holder by more than
            ``min_improvement`` (a tie keeps the current model).
        split: the evaluation split both models are compared on.
    """

    metric: str = "accuracy"
    threshold: float = 0.0
    beat_current: bool = True
    min_improvement: float = 0.0
    split: str = "test"

    def __post_init__(self) -> None:
        problems = []
        if self.metric not in _METRICS:
            problems.append(f"gate.metric: {self.metric!r} is not one of {list(_METRICS)}")
        for name in ("threshold", "min_improvement"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0.0 <= value <= 1.0:
                problems.append(f"gate.{name}: {value!r} is not a number from 0 to 1")
        if not isinstance(self.beat_current, bool):
            problems.append(f"gate.beat_current: {self.beat_current!r} is not true/false")
        if self.split not in ("train", "val", "test"):
            problems.append(f"gate.split: {self.split!r} is not train, val or test")
        if problems:
            raise DagDefinitionError("invalid deploy gate: " + "; ".join(problems))


#: champion/challenger on test accuracy, no threshold
DEFAULT_GATE = DeployGate()


def parse_gate(gate: DeployGate | dict[str, Any] | None) -> DeployGate | None:
    """A gate from a ``DeployGate``, a dict (e.g. from YAML) or None (no gate).

    Raises:
        DagDefinitionError: unknown keys or out-of-range values, with the field path.
    """
    if gate is None or isinstance(gate, DeployGate):
        return gate
    if not isinstance(gate, dict):
        raise DagDefinitionError(f"gate must be a DeployGate, a dict or None, not "
                                 f"{type(gate).__name__}")
    known = {f.name for f in fields(DeployGate)}
    unknown = sorted(set(gate) - known)
    if unknown:
        raise DagDefinitionError(f"invalid deploy gate: unknown key(s) "
                                 f"{', '.join('gate.' + k for k in unknown)}; known: "
                                 f"{', '.join(sorted(known))}")
    return DeployGate(**{k: _coerce(k, v) for k, v in gate.items()})


def _coerce(key: str, value: Any) -> Any:
    """Rendered templates are strings: ``"0.9"`` -> 0.9, ``"False"`` -> False."""
    if not isinstance(value, str):
        return value
    if key in ("threshold", "min_improvement"):
        try:
            return float(value)
        except ValueError:
            return value
    if key == "beat_current" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _templated(value: Any) -> bool:
    return isinstance(value, dict) and any(isinstance(v, str) and "{{" in v
                                           for v in value.values())


class DeployModelOperator(BaseOperator):
    """Promote ``model_name`` version ``version`` to ``alias`` if it passes ``gate``.

    1. Gate: the challenger's metric on ``dataset_uri``'s ``gate.split`` must reach
       ``gate.threshold`` and, with ``gate.beat_current``, beat the version holding the
       alias, evaluated here on the same split. Otherwise the alias is left alone and the
       task ends *skipped* with the reason in its log.
    2. The alias moves to the challenger.
    3. With ``serving_url``: the endpoint (``mlpipe serve models:/<name>@<alias>``) is asked
       to reload, then smoke-tested with ``smoke_requests`` real images from the split: it
       must serve the new version and agree with the model's own predictions on at least
       ``smoke_min_agreement`` of them. If not, the alias moves back (the endpoint reloads
       again) and the task fails.

    Returns ``{"model_name", "alias", "version", "previous_version", "metric", "challenger",
    "champion", "served_version"}``.
    """

    template_fields = ("model_name", "version", "alias", "gate", "dataset_uri", "serving_url")

    def __init__(self, task_id: str, *, model_name: str, version: Any,
                 alias: str = "production",
                 gate: DeployGate | dict[str, Any] | None = DEFAULT_GATE,
                 dataset_uri: Any = None, serving_url: str | None = None,
                 smoke_requests: int = 8, smoke_min_agreement: float = 0.9,
                 **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.model_name = model_name
        self.version = version
        self.alias = alias
        # A gate with templates (e.g. a threshold from params) is checked once rendered.
        self.gate: Any = gate if _templated(gate) else parse_gate(gate)
        if dataset_uri is None and (self.gate is not None or serving_url):
            raise DagDefinitionError(
                f"task {task_id!r}: DeployModelOperator needs dataset_uri (the preprocessed "
                "data set) to evaluate its gate and smoke-test the endpoint; pass "
                "dataset_uri=..., or gate=None and no serving_url to deploy unconditionally")
        self.dataset_uri = dataset_uri
        self.serving_url = serving_url
        if smoke_requests < 1:
            raise DagDefinitionError(f"smoke_requests must be >= 1, got {smoke_requests}")
        if not 0.0 <= smoke_min_agreement <= 1.0:
            raise DagDefinitionError(
                f"smoke_min_agreement must be in [0, 1], got {smoke_min_agreement}")
        self.smoke_requests = smoke_requests
        self.smoke_min_agreement = smoke_min_agreement
        self._loaded: dict[str, Any] = {}

    def execute(self, context: Context) -> dict[str, Any]:
        from mlpipe.tracking import models as registry

        self.gate = parse_gate(self.gate)
        tracking_uri = context["mlflow_run"].client.tracking_uri
        name, version = self.model_name, _version_number(self.version, self.model_name)
        registry.version_tags(tracking_uri, name, version)  # fails clearly if it is unknown
        previous = registry.alias_version(tracking_uri, name, self.alias)
        if previous == version:
            raise TaskSkipped(f"version {version} of {name!r} already holds alias "
                              f"{self.alias!r}; nothing to deploy")
        scores = self._gate(context, tracking_uri, version, previous)
        registry.set_alias(tracking_uri, name, self.alias, version)
        log.info("alias %r of %r: version %s -> %s", self.alias, name, previous, version)
        served = None
        if self.serving_url:
            try:
                served = self._smoke_test(tracking_uri, version)
            except Exception as exc:
                self._roll_back(tracking_uri, version, previous, exc)
                raise DeployError(
                    f"smoke test of {self.serving_url} failed for {name!r} version {version} "
                    f"({exc}); alias {self.alias!r} moved back to "
                    f"{previous or 'nothing (removed)'}") from None
        else:
            log.info("no serving_url given: nothing to reload or smoke-test")
        registry.tag_version(tracking_uri, name, version,
                             {f"mlpipe.deployed.{self.alias}": context["run_id"]})
        return {"model_name": name, "alias": self.alias, "version": version,
                "previous_version": previous, **scores, "served_version": served}

    # -- the gate ----------------------------------------------------------------------

    def _gate(self, context: Context, tracking_uri: str, version: str,
              previous: str | None) -> dict[str, Any]:
        gate = parse_gate(self.gate)
        if gate is None:
            return {"metric": None, "challenger": None, "champion": None}
        challenger = self._score(tracking_uri, version, gate)
        champion = self._score(tracking_uri, previous, gate) if previous else None
        mlflow_run = context["mlflow_run"]
        metrics = {f"challenger_{gate.metric}": challenger}
        if champion is not None:
            metrics[f"champion_{gate.metric}"] = champion
        mlflow_run.log_metrics(metrics)
        mlflow_run.log_params({"model_name": self.model_name, "version": version,
                               "alias": self.alias, "champion_version": previous or "",
                               **{f"gate_{k}": v for k, v in asdict(gate).items()}})
        reason = None
        if challenger < gate.threshold:
            reason = (f"{gate.split} {gate.metric} {challenger:.4f} is below the threshold "
                      f"{gate.threshold:.4f}")
        elif gate.beat_current and champion is not None and \
                challenger <= champion + gate.min_improvement:
            reason = (f"{gate.split} {gate.metric} {challenger:.4f} does not beat version "
                      f"{previous} holding {self.alias!r} ({champion:.4f}"
                      f"{f' + {gate.min_improvement}' if gate.min_improvement else ''})")
        if reason is not None:
            from mlpipe.tracking.models import tag_version

            tag_version(tracking_uri, self.model_name, version,
                        {f"mlpipe.gate.{self.alias}": f"rejected: {reason}"})
            raise TaskSkipped(f"version {version} of {self.model_name!r} not deployed: "
                              f"{reason}; alias {self.alias!r} left at {previous}")
        log.info("gate passed: %s %s %.4f (threshold %.4f, current holder %s: %s)",
                 gate.split, gate.metric, challenger, gate.threshold, previous,
                 "-" if champion is None else f"{champion:.4f}")
        return {"metric": gate.metric, "challenger": challenger, "champion": champion}

    def _score(self, tracking_uri: str, version: str, gate: DeployGate) -> float:
        from mlpipe.ml.shards import predict_split
        from mlpipe.operators.evaluate import classification_metrics, spec_transform

        loaded = self._load(tracking_uri, version)
        y, predicted, manifest = predict_split(loaded.model, local_path(self.dataset_uri),
                                               gate.split,
                                               transform=spec_transform(loaded.metadata))
        report = classification_metrics(y, predicted,
                                         [str(c) for c in manifest["classes"]])
        return float(report[gate.metric])

    def _load(self, tracking_uri: str, version: str) -> Any:
        """The registered version, loaded once per try (gate and smoke test share it)."""
        from mlpipe.tracking.models import load_model

        if version not in self._loaded:
            self._loaded[version] = load_model(f"models:/{self.model_name}/{version}",
                                               tracking_uri)
        return self._loaded[version]

    # -- serving -----------------------------------------------------------------------

    def _smoke_test(self, tracking_uri: str, version: str) -> str:
        """Reload the endpoint and check it serves ``version`` and agrees with the model."""
        from mlpipe.hooks.serving import ServingClient
        from mlpipe.ml.inference import ModelSpec, predict_bytes
        from mlpipe.tracking.models import SPEC_KEY

        assert self.serving_url is not None
        client = ServingClient(self.serving_url)
        reloaded = client.reload()
        if str(reloaded.get("version")) != version:
            raise DeployError(f"the endpoint serves version {reloaded.get('version')} after "
                              f"reload, expected {version}")
        images = self._smoke_images()
        answer = client.predict(images)
        if str(answer.get("model_version")) != version:
            raise DeployError(f"predictions came from version {answer.get('model_version')}, "
                              f"expected {version}")
        served = [p["label"] for p in answer.get("predictions", [])]
        if len(served) != len(images):
            raise DeployError(f"{len(served)} predictions for {len(images)} images")
        loaded = self._load(tracking_uri, version)
        spec = ModelSpec.from_dict(loaded.metadata[SPEC_KEY])
        local = [p.label for p in predict_bytes(loaded.model, spec, [d for _, d in images])]
        agreement = sum(a == b for a, b in zip(served, local, strict=True)) / len(images)
        if agreement < self.smoke_min_agreement:
            raise DeployError(f"served predictions agree with the model on {agreement:.0%} "
                              f"of {len(images)} images (need {self.smoke_min_agreement:.0%})")
        log.info("smoke test passed: %s serves version %s; %d requests, agreement %.0f%%",
                 self.serving_url, version, len(images), agreement * 100)
        return version

    def _smoke_images(self) -> list[tuple[str, bytes]]:
        """The first ``smoke_requests`` images of the split, encoded as PNG files."""
        from PIL import Image

        from mlpipe.ml.shards import ShardDataset

        gate = parse_gate(self.gate)
        split = gate.split if gate else "test"
        dataset = ShardDataset(local_path(self.dataset_uri), split)
        images = []
        for i in range(min(self.smoke_requests, len(dataset))):
            chw = dataset[i][0].numpy()
            array = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            images.append((f"smoke-{i}.png", buffer.getvalue()))
        return images

    def _roll_back(self, tracking_uri: str, version: str, previous: str | None,
                   cause: Exception) -> None:
        from mlpipe.hooks.serving import ServingClient, ServingError
        from mlpipe.tracking.models import set_alias, tag_version

        log.error("smoke test failed (%s); moving alias %r back to %s", cause, self.alias,
                  previous or "nothing")
        set_alias(tracking_uri, self.model_name, self.alias, previous)
        tag_version(tracking_uri, self.model_name, version,
                    {f"mlpipe.gate.{self.alias}": f"rolled back: {cause}"[:4000]})
        if self.serving_url and previous is not None:
            try:
                ServingClient(self.serving_url).reload()
            except ServingError as exc:
                log.warning("the endpoint did not reload after the rollback: %s", exc)


def _version_number(value: Any, name: str) -> str:
    """``3``, ``"3"`` or ``"models:/<name>/3"`` (RegisterModelOperator's output) -> ``"3"``."""
    text = str(value).strip()
    if text.startswith("models:/"):
        head, _, version = text[len("models:/"):].partition("/")
        if head != name or not version.isdigit():
            raise TaskError(f"version {text!r} is not a version of model {name!r}; pass "
                            f"'models:/{name}/<n>' or the version number")
        return version
    if not text.isdigit():
        raise TaskError(f"version {text!r} of model {name!r} is not a version number")
    return text
