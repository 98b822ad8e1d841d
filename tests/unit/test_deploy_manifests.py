"""deploy/kubernetes renders (a small kustomize: resources, namespace, labels,
images, replicas, JSON 6902 patches — exactly the features the kustomizations
use) and every object validates offline against the Kubernetes schemas, strictly.
The CloudNativePG Cluster, a custom resource, gets a structural check. Then the
pieces must fit: selectors match pods, probes use declared ports, referenced
ConfigMaps/Secrets exist, PDBs and HPAs target Deployments, and every
PROTOMESH_* variable is one the code reads."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.platform.config import Settings, documented_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ("base", "overlays/dev", "overlays/production")
Doc = dict[str, Any]


def render(directory: Path) -> list[Doc]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for entry in spec.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(entry["pairs"])
    if "namespace" in spec:
        for doc in docs:
            doc["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        for container in containers(docs):
            name, _, _ = container["image"].partition(":")
            if name == image["name"] or name == image.get("newName"):
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    for replica in spec.get("replicas", []):
        (target,) = [
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"] == replica["name"]
        ]
        target["spec"]["replicas"] = replica["count"]
    for patch in spec.get("patches", []):
        selected = [d for d in docs if matches(d, patch["target"])]
        assert selected, f"{directory}: patch target {patch['target']} matches nothing"
        for doc in selected:
            for op in yaml.safe_load(patch["patch"]):
                apply(doc, op)
    return docs


def matches(doc: Doc, target: dict[str, str]) -> bool:
    return all(
        doc["kind"] == value if key == "kind" else doc["metadata"]["name"] == value
        for key, value in target.items()
    )


def apply(doc: Doc, op: dict[str, Any]) -> None:
    assert op["op"] in ("replace", "add"), op
    *parents, last = op["path"].strip("/").split("/")
    node = doc
    for key in parents:
        node = node[key]
    if op["op"] == "replace":
        assert last in node, f"replace of a missing path {op['path']}"
    node[last] = op["value"]


def containers(docs: list[Doc]) -> list[Doc]:
    found = []
    for doc in docs:
        pod = pod_spec(doc)
        if pod is not None:
            found.extend(pod["containers"])
    return found


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "Job"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    return None


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    return request.param, render(DEPLOY / request.param)


def test_every_kubernetes_object_validates_strictly(rendered: tuple[str, list[Doc]]) -> None:
    name, docs = rendered
    problems = []
    for doc in docs:
        if doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            continue
        try:
            kubernetes_validate.validate(copy.deepcopy(doc), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_postgres_cluster_has_what_the_services_need(rendered: tuple[str, list[Doc]]) -> None:
    name, docs = rendered
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    spec = cluster["spec"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert set(spec) <= {
        "instances",
        "imageName",
        "primaryUpdateStrategy",
        "storage",
        "resources",
        "postgresql",
        "bootstrap",
        "monitoring",
    }, name
    assert spec["instances"] >= 1
    assert re.fullmatch(r"\d+[GM]i", spec["storage"]["size"])
    assert (
        "CREATE EXTENSION IF NOT EXISTS vector"
        in spec["bootstrap"]["initdb"]["postInitApplicationSQL"]
    )
    dsn = next(d for d in docs if d["metadata"]["name"] == "protomesh-database")["stringData"]
    assert f"@{cluster['metadata']['name']}-rw:" in dsn["PROTOMESH_APP_DATABASE_URL"]


def test_the_pieces_fit_together(rendered: tuple[str, list[Doc]]) -> None:
    name, docs = rendered
    by_kind: dict[str, dict[str, Doc]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"]
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    for service in by_kind["Service"].values():
        selector = service["spec"]["selector"]
        targets = [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]
        assert targets, f"{name}: Service {service['metadata']['name']} selects no pods"
        ports = {
            p["name"]
            for n in targets
            for c in deployments[n]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{service['metadata']['name']}: {port}"
    for kind in ("PodDisruptionBudget",):
        for pdb in by_kind[kind].values():
            selector = pdb["spec"]["selector"]["matchLabels"]
            assert any(selector.items() <= labels.items() for labels in pod_labels.values())
    for hpa in by_kind["HorizontalPodAutoscaler"].values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for doc in docs:
        pod = pod_spec(doc)
        if pod is None:
            continue
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            declared = {p["containerPort"] for p in container.get("ports", [])} | {
                p["name"] for p in container.get("ports", [])
            }
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in container:
                    (handler,) = [
                        v
                        for k, v in container[probe].items()
                        if k in ("grpc", "httpGet", "tcpSocket")
                    ]
                    assert handler["port"] in declared, f"{doc['metadata']['name']} {probe}"
            for source in container.get("envFrom", []):
                kind, ref = (
                    ("ConfigMap", source["configMapRef"])
                    if "configMapRef" in source
                    else ("Secret", source["secretRef"])
                )
                assert ref["name"] in by_kind[kind], (
                    f"{doc['metadata']['name']}: {kind} {ref['name']}"
                )
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                if "secret" in volume:
                    assert volume["secret"]["secretName"] in by_kind["Secret"]


def test_every_protomesh_variable_is_one_the_code_reads(rendered: tuple[str, list[Doc]]) -> None:
    name, docs = rendered
    known = {variable for variable, _, _ in documented_settings()}
    source = "\n".join(p.read_text() for p in (ROOT / "services").rglob("*.py"))
    known |= set(re.findall(r"PROTOMESH_[A-Z_]+[A-Z]", source))
    known |= {"PROTOMESH_GATEWAY_" + f.upper() for f in gateway_fields()}
    used = set()
    for doc in docs:
        for key in doc.get("data", {}) | doc.get("stringData", {}):
            used.add(key)
        for container in containers([doc]):
            used |= {e["name"] for e in container.get("env", [])}
    unknown = sorted(v for v in used if v.startswith("PROTOMESH_") and v not in known)
    assert not unknown, f"{name}: variables nothing reads: {unknown}"
    assert Settings.from_env({k: "" for k in used if k.startswith("PROTOMESH_")}) is not None


def gateway_fields() -> list[str]:
    from dataclasses import fields

    from gateway.config import GatewayConfig

    return [f.name for f in fields(GatewayConfig)]
