"""require-labels: an example kstep custom step written in Python.

A policy check: every manifest must carry the labels the pipeline asks for (by default the
recommended `app.kubernetes.io/name`). It exports `kstep:steps/step` (world
`kstep:steps/custom-step`) like the Rust examples and runs in the same sandbox; it is built into
a component by componentize-py (see build.sh).

Parameters (`with:` in kstep.yaml, all optional):
  labels: [app.kubernetes.io/name, ...]   the labels every object must have
  kinds:  [Deployment, Service, ...]      only check these kinds (default: every kind)
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import step
from wit_world.imports import log, types

DEFAULT_LABELS = ["app.kubernetes.io/name"]


def fail(message: str) -> Err:
    return Err(step.Error(message=message, findings=[]))


def string_list(params: dict, key: str, default):
    value = params.get(key, default)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"`{key}` must be a list of strings")
    return value


def check(documents: list, labels: list, kinds) -> list:
    """The findings for `documents` (parsed JSON objects)."""
    findings = []
    for index, doc in enumerate(documents):
        kind = doc.get("kind", "object")
        if kinds is not None and kind not in kinds:
            continue
        metadata = doc.get("metadata") or {}
        present = metadata.get("labels") or {}
        missing = [label for label in labels if label not in present]
        if missing:
            name = metadata.get("name", "(unnamed)")
            findings.append(
                step.Finding(
                    severity=types.Severity.ERROR,
                    message=f"{kind} `{name}` has no label {', '.join(missing)}",
                    document=index,
                    field="/metadata/labels",
                )
            )
    return findings


class Step(exports.Step):
    def run(self, input: step.Input) -> step.Output:
        try:
            params = json.loads(input.params)
        except ValueError as e:
            raise fail(f"parameters are not JSON: {e}")
        unknown = sorted(set(params) - {"labels", "kinds"})
        if unknown:
            raise fail(f"unknown parameter `{unknown[0]}` (known: labels, kinds)")
        labels = string_list(params, "labels", DEFAULT_LABELS)
        kinds = string_list(params, "kinds", None)
        documents = [json.loads(text) for text in input.documents]
        findings = check(documents, labels, kinds)
        log.log(
            log.Level.INFO,
            f"checked {len(documents)} document(s) for {len(labels)} label(s): "
            f"{len(findings)} problem(s)",
        )
        return step.Output(variables=[], documents=None, findings=findings)
