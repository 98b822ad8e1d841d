"""deploy/kubernetes, checked offline.

`render` is a small kustomize: `resources` (files and directories), `patches`
(JSON 6902 `add`/`replace`, inline or from a file, targeted by kind, name and a
`key=value` label selector), then `namespace`, `labels` and `images` — the
features the kustomizations use, and it refuses any other. Every rendered
object must validate against the Kubernetes schemas strictly (unknown fields
rejected); the CloudNativePG `Cluster`, a custom resource, gets a structural
check of the fields we use. Then the pieces must fit: selectors, ports, probes,
references to ConfigMaps and Secrets, autoscalers, the migrate-first init
container, and every PROTOMESH_* variable is one the code reads."""

from __future__ import annotations

import copy
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import PROTOMESH_SERVICES
from services.platform.config import Settings, documented_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/production")
# The oldest Kubernetes the manifests are for (native gRPC probes, preStop sleep)
# and the newest that kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "images", "patches"}
SCHEMA_LABEL = "protomesh.io/schema=required"
# Keys of the Secret CloudNativePG writes for the application owner, `<cluster>-app`.
CNPG_APP_SECRET_KEYS = {"username", "password", "host", "port", "dbname", "uri", "jdbc-uri"}
Doc = dict[str, Any]


# --- the renderer -------------------------------------------------------------------


def render(directory: Path) -> list[Doc]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(spec) - KUSTOMIZATION_KEYS
    assert not unsupported, f"{directory}: the test's renderer does not handle {unsupported}"
    docs: list[Doc] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in spec.get("patches", []):
        ops = yaml.safe_load(
            patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
        )
        selected = [d for d in docs if targeted(d, patch["target"])]
        assert selected, f"{directory}: patch target {patch['target']} matches nothing"
        for doc in selected:
            for op in ops:
                apply(doc, op)
    for doc in docs:
        metadata = doc["metadata"]
        if "namespace" in spec:
            metadata["namespace"] = spec["namespace"]
        for entry in spec.get("labels", []):
            assert set(entry) == {"pairs"}, entry  # no includeSelectors/includeTemplates
            metadata.setdefault("labels", {}).update(entry["pairs"])
        for image in spec.get("images", []):
            for container in containers(doc, init=True):
                name = container["image"].rsplit(":", 1)[0]
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    return docs


def targeted(doc: Doc, target: dict[str, str]) -> bool:
    assert set(target) <= {"kind", "name", "labelSelector"}, target
    labels = doc["metadata"].get("labels", {})
    key, _, value = target.get("labelSelector", "=").partition("=")
    return (
        doc["kind"] == target.get("kind", doc["kind"])
        and doc["metadata"]["name"] == target.get("name", doc["metadata"]["name"])
        and (not key or labels.get(key) == value)
    )


def apply(doc: Doc, op: Doc) -> None:
    assert op["op"] in ("add", "replace"), op
    *parents, last = op["path"].strip("/").split("/")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op["op"] == "add":
            node.insert(index, copy.deepcopy(op["value"]))
        else:
            node[index] = copy.deepcopy(op["value"])
        return
    if op["op"] == "replace":
        assert last in node, f"replace of a missing path {op['path']}"
    node[last] = copy.deepcopy(op["value"])


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "Job"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    return None


def containers(doc: Doc, init: bool = False) -> list[Doc]:
    pod = pod_spec(doc)
    if pod is None:
        return []
    found: list[Doc] = list(pod["containers"])
    return found + list(pod.get("initContainers", [])) if init else found


# --- fixtures -----------------------------------------------------------------------


class Rendered:
    def __init__(self, name: str, docs: list[Doc]) -> None:
        self.name = name
        self.docs = docs
        self.by_kind: dict[str, dict[str, Doc]] = {}
        for doc in docs:
            named = self.by_kind.setdefault(doc["kind"], {})
            assert doc["metadata"]["name"] not in named, f"{name}: duplicate {doc['kind']}"
            named[doc["metadata"]["name"]] = doc

    def of(self, kind: str) -> dict[str, Doc]:
        return self.by_kind.get(kind, {})

    @property
    def deployments(self) -> dict[str, Doc]:
        return self.of("Deployment")

    @property
    def config(self) -> dict[str, str]:
        data: dict[str, str] = self.of("ConfigMap")["protomesh-config"]["data"]
        return data

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.config)

    def workloads(self) -> Iterator[Doc]:
        yield from self.of("Deployment").values()
        yield from self.of("Job").values()


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return Rendered(request.param, render(DEPLOY / request.param))


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selected_deployments(rendered: Rendered, selector: dict[str, str]) -> list[Doc]:
    return [d for d in rendered.deployments.values() if selector.items() <= pod_labels(d).items()]


def env_names(container: Doc) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


def command_of(container: Doc) -> list[str]:
    command: list[str] = container["command"]
    return command


# --- validity -----------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_validates_strictly(rendered: Rendered, version: str) -> None:
    problems = []
    for doc in rendered.docs:
        if doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            continue
        try:
            kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not problems, f"{rendered.name}:\n" + "\n".join(problems)


def test_every_object_lands_in_one_namespace(rendered: Rendered) -> None:
    namespaces = {doc["metadata"].get("namespace") for doc in rendered.docs}
    assert None not in namespaces
    assert len(namespaces) == 1, namespaces


def test_the_postgres_cluster_is_what_the_services_need(rendered: Rendered) -> None:
    (cluster,) = rendered.of("Cluster").values()
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert set(spec) == {
        "instances",
        "imageName",
        "primaryUpdateStrategy",
        "storage",
        "resources",
        "postgresql",
        "bootstrap",
        "inheritedMetadata",
    }
    assert isinstance(spec["instances"], int)
    assert spec["instances"] >= 1
    assert re.fullmatch(
        r"ghcr\.io/cloudnative-pg/postgresql:\d+[\w.-]*-standard-\w+", spec["imageName"]
    )
    assert spec["primaryUpdateStrategy"] in ("unsupervised", "supervised")
    assert set(spec["storage"]) == {"size"}
    assert re.fullmatch(r"\d+Gi", spec["storage"]["size"])
    assert set(spec["resources"]) == {"requests", "limits"}
    assert set(spec["postgresql"]) == {"parameters"}
    assert all(isinstance(v, str) for v in spec["postgresql"]["parameters"].values())
    assert set(spec["inheritedMetadata"]) == {"annotations"}

    initdb = spec["bootstrap"]["initdb"]
    assert set(spec["bootstrap"]) == {"initdb"}
    assert set(initdb) == {
        "database",
        "owner",
        "postInitApplicationSQL",
        "postInitApplicationSQLRefs",
    }
    assert "CREATE EXTENSION IF NOT EXISTS vector" in initdb["postInitApplicationSQL"]
    assert all(isinstance(statement, str) for statement in initdb["postInitApplicationSQL"])
    assert set(initdb["postInitApplicationSQLRefs"]) == {"secretRefs"}
    for ref in initdb["postInitApplicationSQLRefs"]["secretRefs"]:
        assert set(ref) == {"name", "key"}
        secret = rendered.of("Secret")[ref["name"]]
        assert ref["key"] in secret["stringData"]

    # The app role the SQL creates is the one the services connect as, through -rw.
    role_sql = rendered.of("Secret")["protomesh-db-app-role"]["stringData"]["app-role.sql"]
    bootstrap = (ROOT / "services/platform/sql/bootstrap.sql").read_text()
    attributes = re.search(r"CREATE ROLE protomesh_app ([A-Z ]+);", bootstrap)
    assert attributes is not None
    assert " ".join(role_sql.split()).startswith(f"CREATE ROLE protomesh_app {attributes[1]}")
    app_dsn = rendered.of("Secret")["protomesh-services"]["stringData"][
        "PROTOMESH_APP_DATABASE_URL"
    ]
    db = initdb["database"]
    assert re.fullmatch(
        rf"postgresql://protomesh_app:[^@]+@{cluster['metadata']['name']}-rw:5432/{db}", app_dsn
    )


# --- the pieces fit -----------------------------------------------------------------


def test_every_service_selects_pods_on_declared_ports(rendered: Rendered) -> None:
    for name, service in rendered.of("Service").items():
        targets = selected_deployments(rendered, service["spec"]["selector"])
        assert targets, f"{rendered.name}: Service {name} selects no pods"
        declared = {p["name"] for d in targets for c in containers(d) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, f"Service {name}: {port}"


def test_clients_reach_each_service_through_its_headless_service(rendered: Rendered) -> None:
    settings = rendered.settings
    namespace = rendered.docs[0]["metadata"]["namespace"]
    for key, (service, _) in PROTOMESH_SERVICES.items():
        address = settings.address_of(service)
        match = re.fullmatch(r"dns:///([a-z-]+)\.([a-z-]+)\.svc\.cluster\.local:(\d+)", address)
        assert match, f"{rendered.name}: {service} address {address!r}"
        headless = rendered.of("Service")[match[1]]
        assert headless["spec"]["clusterIP"] == "None"
        assert match[2] == namespace, f"{rendered.name}: {address} is not in {namespace}"
        assert int(match[3]) in {p["port"] for p in headless["spec"]["ports"]}
        (deployment,) = selected_deployments(rendered, headless["spec"]["selector"])
        (container,) = containers(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["grpc"] == settings.port_of(service) == int(match[3])
        probe = container["readinessProbe"]["grpc"]
        assert probe == {"port": settings.port_of(service), "service": key}
    assert rendered.of("Service")["gateway"]["spec"]["type"] == "ClusterIP"


def test_every_probe_uses_a_declared_port(rendered: Rendered) -> None:
    for doc in rendered.workloads():
        for container in containers(doc):
            declared = {p["containerPort"] for p in container.get("ports", [])} | {
                p["name"] for p in container.get("ports", [])
            }
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in container:
                    (handler,) = [
                        v
                        for k, v in container[probe].items()
                        if k in ("grpc", "httpGet", "tcpSocket", "exec")
                    ]
                    assert handler["port"] in declared, f"{doc['metadata']['name']} {probe}"
            if doc["kind"] == "Deployment":
                assert "livenessProbe" in container, doc["metadata"]["name"]


def test_metrics_ports_follow_the_metrics_port_base(rendered: Rendered) -> None:
    settings = rendered.settings
    component = {"search-indexer": "search"}
    for name, deployment in rendered.deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        (container,) = containers(deployment)
        declared = {p["containerPort"] for p in container["ports"]}
        port = int(annotations["prometheus.io/port"])
        assert port in declared, name
        if name == "gateway":
            assert port == settings.gateway.port
        else:
            assert port == settings.metrics_port_of(component.get(name, name)) != 0


def test_every_referenced_configmap_and_secret_exists(rendered: Rendered) -> None:
    secrets = {name: set(s.get("stringData", {})) for name, s in rendered.of("Secret").items()}
    for cluster in rendered.of("Cluster"):
        secrets[f"{cluster}-app"] = CNPG_APP_SECRET_KEYS
    for doc in rendered.workloads():
        name = doc["metadata"]["name"]
        pod = pod_spec(doc)
        assert pod is not None
        for container in containers(doc, init=True):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in rendered.of("ConfigMap"), name
                else:
                    assert source["secretRef"]["name"] in secrets, name
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    assert ref["key"] in secrets[ref["name"]], f"{name}: {ref}"
        for volume in pod.get("volumes", []):
            sources = [volume, *volume.get("projected", {}).get("sources", [])]
            for source in sources:
                if "secret" in source:
                    secret = source["secret"]
                    assert secret.get("secretName", secret.get("name")) in secrets, name


def test_autoscalers_and_disruption_budgets_target_deployments(rendered: Rendered) -> None:
    scaled = set()
    for name, hpa in rendered.of("HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment", name
        assert target["name"] in rendered.deployments, name
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        scaled.add(target["name"])
    for name in scaled:
        # A `replicas` field would reset the autoscaler's count on every apply.
        assert "replicas" not in rendered.deployments[name]["spec"], name
    for name, pdb in rendered.of("PodDisruptionBudget").items():
        assert selected_deployments(rendered, pdb["spec"]["selector"]["matchLabels"]), name
    assert scaled == set(rendered.deployments) - {"search-indexer"}


def test_exactly_one_indexer_runs(rendered: Rendered) -> None:
    indexing = []
    for name, deployment in rendered.deployments.items():
        (container,) = containers(deployment)
        if command_of(container)[-1] == "services.search":
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            if env.get("PROTOMESH_SEARCH_INDEXER", "on") != "off":
                indexing.append(name)
    assert indexing == ["search-indexer"]
    indexer = rendered.deployments["search-indexer"]["spec"]
    assert indexer["replicas"] == 1
    assert indexer["strategy"] == {"type": "Recreate"}
    assert "search-indexer" not in rendered.of("PodDisruptionBudget")


def test_pods_that_use_the_database_migrate_first(rendered: Rendered) -> None:
    key, _, value = SCHEMA_LABEL.partition("=")
    for name, deployment in rendered.deployments.items():
        (container,) = containers(deployment)
        sources = {s.get("secretRef", {}).get("name") for s in container["envFrom"]}
        uses_database = "protomesh-services" in sources
        labelled = deployment["metadata"]["labels"].get(key) == value
        assert uses_database == labelled, name
        init = deployment["spec"]["template"]["spec"].get("initContainers", [])
        if uses_database:
            (migrate,) = init
            assert command_of(migrate) == ["protomesh", "migrate"]
            assert migrate["image"] == container["image"]
            assert env_names(migrate) == {"PROTOMESH_DATABASE_URL"}
        else:
            assert not init, name
    # The owner DSN is for migrations only; the services get the application role's.
    for doc in rendered.workloads():
        for container in containers(doc):
            is_migration = command_of(container) == ["protomesh", "migrate"]
            assert ("PROTOMESH_DATABASE_URL" in env_names(container)) == is_migration


def test_only_the_components_that_mint_tokens_hold_the_signing_key(rendered: Rendered) -> None:
    holders = set()
    for name, deployment in rendered.deployments.items():
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            for source in volume.get("projected", {}).get("sources", []):
                if source.get("secret", {}).get("name") == "protomesh-signing-key":
                    holders.add(name)
    assert holders == {"search-indexer", "task-worker"}


def test_every_container_is_locked_down(rendered: Rendered) -> None:
    for doc in rendered.workloads():
        name = doc["metadata"]["name"]
        pod = pod_spec(doc)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(doc, init=True):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert "memory" in container["resources"]["limits"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name


def test_commands_name_real_entry_points(rendered: Rendered) -> None:
    for doc in rendered.workloads():
        for container in containers(doc, init=True):
            command = command_of(container)
            if command[:2] == ["python", "-m"]:
                spec = importlib.util.find_spec(command[2])
                assert spec is not None, command
                if spec.submodule_search_locations is not None:  # a package runs its __main__
                    assert importlib.util.find_spec(f"{command[2]}.__main__"), command
            else:
                assert command == ["protomesh", "migrate"], command


def test_every_protomesh_variable_is_one_the_code_reads(rendered: Rendered) -> None:
    known = {variable for variable, _, _ in documented_settings()}
    used = set(rendered.config)
    for secret in rendered.of("Secret").values():
        used |= {k for k in secret.get("stringData", {}) if k.isupper()}
    for doc in rendered.workloads():
        for container in containers(doc, init=True):
            used |= env_names(container)
    unknown = sorted(v for v in used if v not in known)
    assert not unknown, f"{rendered.name}: variables nothing reads: {unknown}"
    # And the ConfigMap's values parse.
    assert rendered.settings.metrics_port_base == 9101


def test_secrets_are_templates_without_real_values() -> None:
    for doc in yaml.safe_load_all((DEPLOY / "base" / "secrets.yaml").read_text()):
        for key, value in doc["stringData"].items():
            assert value == "" or "REPLACE_ME" in value, f"{doc['metadata']['name']}.{key}"
            assert "BEGIN PRIVATE KEY-----\n" not in value


def test_the_image_installs_the_locked_project_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert "requirements.lock" in dockerfile
    (user,) = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies a missing {path}"
