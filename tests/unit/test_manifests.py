"""Every manifest under deploy/ against its resource schema, so a typo fails here and not in a
cluster: InferenceServices against KServe's own models (kserve.V1beta1InferenceService and the
Kubernetes client models it nests, unknown fields refused); RayJobs against the ray.io/v1 RayJob
fields of KubeRay's API reference (below), with their pod templates checked by
kubernetes-validate; core resources by kubernetes-validate, strict. And what the manifests name
must exist: their commands parse with our own command lines, their environment variables are read
by our code, their volume mounts name their volumes."""

from __future__ import annotations

import argparse
import copy
import re
import shlex
from pathlib import Path

import jsonschema
import kubernetes.client
import kubernetes_validate
import pytest
import yaml

from cli.main import build_parser
from core.config import PROJECT_ROOT
from servers import kserve_server

DEPLOY = PROJECT_ROOT / "deploy"
K8S_VERSION = "1.37.0"
POD_TEMPLATE = {"type": "object"}  # checked by kubernetes-validate (PodTemplate), not here

# ray.io/v1 RayJob: the fields of RayJobSpec, RayClusterSpec, HeadGroupSpec and WorkerGroupSpec in
# KubeRay's API reference (https://ray-project.github.io/kuberay/reference/api/), written down
# here because no registry package ships the CRD. Unknown fields are refused, as the API server's
# structural schema prunes them silently.
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT = {"type": "object"}
HEAD_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "rayStartParams": STR_MAP,
        "template": POD_TEMPLATE,
        "serviceType": {"type": "string"},
        "enableIngress": {"type": "boolean"},
        "headService": OBJECT,
    },
}
WORKER_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groupName", "template"],
    "properties": {
        "groupName": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 0},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 0},
        "numOfHosts": {"type": "integer", "minimum": 1},
        "idleTimeoutSeconds": {"type": "integer"},
        "rayStartParams": STR_MAP,
        "template": POD_TEMPLATE,
        "scaleStrategy": OBJECT,
        "suspend": {"type": "boolean"},
        "resources": STR_MAP,
        "labels": STR_MAP,
    },
}
RAY_CLUSTER_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["headGroupSpec"],
    "properties": {
        "rayVersion": {"type": "string"},
        "headGroupSpec": HEAD_GROUP,
        "workerGroupSpecs": {"type": "array", "items": WORKER_GROUP},
        "enableInTreeAutoscaling": {"type": "boolean"},
        "autoscalerOptions": OBJECT,
        "headServiceAnnotations": STR_MAP,
        "gcsFaultToleranceOptions": OBJECT,
        "authOptions": OBJECT,
        "upgradeStrategy": OBJECT,
        "managedBy": {"type": "string"},
        "suspend": {"type": "boolean"},
    },
}
RAYJOB = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["entrypoint", "rayClusterSpec"],
            "properties": {
                "entrypoint": {"type": "string", "minLength": 1},
                "rayClusterSpec": RAY_CLUSTER_SPEC,
                "clusterSelector": STR_MAP,
                "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
                "shutdownAfterJobFinishes": {"type": "boolean"},
                "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
                "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
                "backoffLimit": {"type": "integer", "minimum": 0},
                "runtimeEnvYAML": {"type": "string"},
                "jobId": {"type": "string"},
                "metadata": STR_MAP,
                "entrypointNumCpus": {"type": "number"},
                "entrypointNumGpus": {"type": "number"},
                "entrypointResources": {"type": "string"},
                "submitterPodTemplate": POD_TEMPLATE,
                "submitterConfig": OBJECT,
                "deletionStrategy": OBJECT,
                "managedBy": {"type": "string"},
                "suspend": {"type": "boolean"},
            },
        },
    },
}


def manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.relative_to(PROJECT_ROOT)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


MANIFESTS = manifests()


# ---- the schemas --------------------------------------------------------------------------------
def unknown_fields(data, type_name: str, where: str = "") -> list[str]:
    """Fields of `data` that the OpenAPI model `type_name` (KServe's or the Kubernetes client's)
    does not have, recursively; wrong shapes (a map where a list belongs) too."""
    type_name = re.sub(r"^Dict\[(\w+), (.*)\]$", r"dict(\1, \2)", re.sub(r"^List\[(.*)\]$", r"list[\1]", type_name))
    if type_name in ("str", "int", "float", "bool", "object", "datetime", "date", "Any"):
        return []
    if type_name.startswith("list["):
        if not isinstance(data, list):
            return [f"{where}: expected a list"]
        inner = type_name[5:-1]
        return [e for i, item in enumerate(data) for e in unknown_fields(item, inner, f"{where}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(data, dict):
            return [f"{where}: expected a map"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in data.items() for e in unknown_fields(v, inner, f"{where}.{k}")]
    model = getattr(kubernetes.client, type_name, None) if type_name.startswith("V1") else None
    if type_name.startswith("V1beta1") or model is None:
        import kserve

        model = getattr(kserve, type_name)
    if not isinstance(data, dict):
        return [f"{where}: expected an object ({type_name})"]
    by_json = {json: attr for attr, json in model.attribute_map.items()}
    errors = []
    for key, value in data.items():
        if key not in by_json:
            errors.append(f"{where}.{key}: not a field of {type_name}")
        else:
            errors += unknown_fields(value, model.openapi_types[by_json[key]], f"{where}.{key}")
    return errors


def pod_templates(doc: dict) -> list[tuple[str, dict]]:
    cluster = doc["spec"]["rayClusterSpec"]
    found = [("head", cluster["headGroupSpec"]["template"])]
    found += [(g["groupName"], g["template"]) for g in cluster.get("workerGroupSpecs", [])]
    if "submitterPodTemplate" in doc["spec"]:
        found.append(("submitter", doc["spec"]["submitterPodTemplate"]))
    return found


def check(doc: dict) -> None:
    """Raise (with the field at fault) unless `doc` is a valid resource of its kind."""
    kind = doc["kind"]
    if kind == "InferenceService":
        assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
        errors = unknown_fields(doc, "V1beta1InferenceService")
        assert not errors, errors
    elif kind == "RayJob":
        jsonschema.validate(doc, RAYJOB)
        for group, template in pod_templates(doc):
            pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": group}}
            kubernetes_validate.validate({**pod_template, "template": template}, K8S_VERSION, strict=True)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("doc", [d for _, d in MANIFESTS], ids=[name for name, _ in MANIFESTS])
def test_manifest_is_a_valid_resource(doc):
    check(doc)


def test_every_kind_is_here():
    kinds = {doc["kind"] for _, doc in MANIFESTS}
    assert {"InferenceService", "RayJob", "PersistentVolumeClaim"} <= kinds


def field_typos(doc: dict) -> list[tuple[str, dict]]:
    """The same manifest with one field misspelt, at a few depths."""
    typos = []
    spec = doc["spec"]
    broken = copy.deepcopy(doc)
    broken["spec"]["specc"] = broken["spec"].pop(next(iter(spec)))
    typos.append(("spec key", broken))
    if doc["kind"] == "InferenceService":
        broken = copy.deepcopy(doc)
        broken["spec"]["predictor"]["minReplica"] = broken["spec"]["predictor"].pop("minReplicas")
        typos.append(("predictor.minReplicas", broken))
        broken = copy.deepcopy(doc)
        broken["spec"]["predictor"]["containers"][0]["volumeMount"] = []
        typos.append(("container.volumeMount", broken))
    if doc["kind"] == "RayJob":
        broken = copy.deepcopy(doc)
        broken["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
        typos.append(("rayStartParams value not a string", broken))
        broken = copy.deepcopy(doc)
        worker = broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        worker["imagePullPolcy"] = "Always"
        typos.append(("worker container.imagePullPolcy", broken))
        broken = copy.deepcopy(doc)
        broken["spec"]["submissionMode"] = "K8sJob"
        typos.append(("submissionMode enum", broken))
    if doc["kind"] == "PersistentVolumeClaim":
        broken = copy.deepcopy(doc)
        broken["spec"]["accessModes"] = "ReadWriteMany"
        typos.append(("accessModes not a list", broken))
    return typos


@pytest.mark.parametrize("doc", [d for _, d in MANIFESTS], ids=[name for name, _ in MANIFESTS])
def test_a_typo_in_a_manifest_is_caught(doc):
    """The checks above are not vacuous: each misspelling fails them."""
    for what, broken in field_typos(doc):
        with pytest.raises((AssertionError, jsonschema.ValidationError, kubernetes_validate.ValidationError)):
            check(broken)
            pytest.fail(f"{what}: not caught")


# ---- what the manifests name exists -------------------------------------------------------------
def containers(doc: dict) -> list[dict]:
    if doc["kind"] == "InferenceService":
        return [c for part in ("predictor", "transformer") for c in doc["spec"].get(part, {}).get("containers", [])]
    if doc["kind"] == "RayJob":
        return [c for _, template in pod_templates(doc) for c in template["spec"]["containers"]]
    return []


def pod_specs(doc: dict) -> list[dict]:
    if doc["kind"] == "InferenceService":
        return [doc["spec"][part] for part in ("predictor", "transformer") if part in doc["spec"]]
    if doc["kind"] == "RayJob":
        return [template["spec"] for _, template in pod_templates(doc)]
    return []


class ParseError(Exception):
    pass


def parse_with(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    def fail(message):
        raise ParseError(f"{shlex.join(argv)}: {message}")

    parser.error = fail
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.error = fail
    return parser.parse_args(argv)


@pytest.mark.parametrize("doc", [d for _, d in MANIFESTS], ids=[name for name, _ in MANIFESTS])
def test_commands_parse_with_our_command_lines(doc):
    if doc["kind"] == "RayJob":
        steps = [shlex.split(step) for step in doc["spec"]["entrypoint"].split("&&")]
        for argv in steps:
            assert argv[0] == "aigq", argv
            parse_with(build_parser(), argv[1:])
    for container in containers(doc):
        command = container.get("command", [])
        if command[:3] == ["python", "-m", "servers.kserve_server"]:
            parse_with(kserve_server.build_parser(), command[3:] + container.get("args", []))
        elif doc["kind"] == "InferenceService":
            pytest.fail(f"{container['name']}: runs {command}, not servers.kserve_server")


def source_text() -> str:
    packages = ("core", "serving", "servers", "pipelines", "cli")
    return "\n".join(p.read_text() for package in packages for p in (PROJECT_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("doc", [d for _, d in MANIFESTS], ids=[name for name, _ in MANIFESTS])
def test_environment_and_volumes_are_ones_the_code_reads(doc):
    code = source_text()
    for container in containers(doc):
        for var in container.get("env", []):
            assert re.search(rf"\b{var['name']}\b", code), f"{var['name']}: no code reads it"
            if var["name"] == "AIGQ_HOME":
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert var["value"] in mounts, "AIGQ_HOME is not a mounted volume"
    for pod in pod_specs(doc):
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{mount['name']}: no such volume"
        pvcs = [v["persistentVolumeClaim"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
        claims = {claim["claimName"] for claim in pvcs}
        defined = {d["metadata"]["name"] for _, d in MANIFESTS if d["kind"] == "PersistentVolumeClaim"}
        assert claims <= defined, f"claims without a manifest: {claims - defined}"


def test_readme_names_the_deploy_folder():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for path in sorted(Path(DEPLOY).rglob("*.yaml")):
        rel = str(path.relative_to(PROJECT_ROOT))
        folder = str(path.parent.relative_to(PROJECT_ROOT))
        assert rel in readme or f"{folder}/" in readme, f"{rel}: not in the README"
