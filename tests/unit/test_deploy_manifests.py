"""deploy/kubernetes, checked offline.

`render` is a small kustomize: `resources` (files and directories), `patches`
(JSON 6902 `add`/`replace`, inline or from a file, targeted by kind, name and a
`key=value` label selector), then `namespace`, `labels` and `images` — the
features the kustomizations use, and it refuses any other. Every rendered
object must validate against the Kubernetes schemas strictly (unknown fields
rejected); the custom resources (CloudNativePG's `Cluster` and `Pooler`,
cert-manager's `Issuer` and `Certificate`) get a structural check of the fields we
use. Then the pieces must fit: selectors, ports, probes, references to
ConfigMaps and Secrets, autoscalers, the migrate-first init container, and every
PROTOMESH_* variable is one the code reads. The connection budget: what every
process opens (pools, LISTEN connections, worker sessions), times the
autoscalers' maxima, must fit in PgBouncer's and PostgreSQL's limits
(docs/scaling.md). Last, security (docs/security.md): every process serves and
dials mutual TLS with a certificate naming what its clients dial, the Ingress
reaches the gateway over verified TLS, and the NetworkPolicies allow exactly the
intended flows."""

from __future__ import annotations

import copy
import importlib.util
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from gateway.config import PROTOMESH_SERVICES
from services.platform.config import Settings, documented_settings
from services.platform.server import app_dsn, direct_dsn

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
# PgBouncer settings a Pooler sets (CloudNativePG accepts these, among others).
PGBOUNCER_PARAMETERS = {
    "max_client_conn",
    "default_pool_size",
    "reserve_pool_size",
    "reserve_pool_timeout",
    "max_prepared_statements",
}
# API groups of custom resources: not in kubernetes-validate's schemas, checked
# structurally below.
CUSTOM_RESOURCE_GROUPS = ("postgresql.cnpg.io/", "cert-manager.io/")
# Keys of the Secret cert-manager writes for a Certificate.
CERTIFICATE_SECRET_KEYS = {"tls.crt", "tls.key", "ca.crt"}
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
    *parents, last = [
        key.replace("~1", "/").replace("~0", "~") for key in op["path"].strip("/").split("/")
    ]
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
        if doc["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS):
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
    # Requests through the read-write Pooler, sessions direct to the primary, search
    # reads through the read-only Pooler (or, without replicas, like requests).
    dsns = rendered.of("Secret")["protomesh-services"]["stringData"]
    db, name = initdb["database"], cluster["metadata"]["name"]
    poolers = {p["spec"]["type"]: n for n, p in rendered.of("Pooler").items()}
    expected = {
        "PROTOMESH_APP_DATABASE_URL": poolers["rw"],
        "PROTOMESH_DIRECT_DATABASE_URL": f"{name}-rw",
        "PROTOMESH_SEARCH_READ_DATABASE_URL": poolers["ro"],
    }
    for variable, host in expected.items():
        if variable == "PROTOMESH_SEARCH_READ_DATABASE_URL" and spec["instances"] == 1:
            assert dsns[variable] == "", "no replica to read from"
            continue
        assert re.fullmatch(rf"postgresql://protomesh_app:[^@]+@{host}:5432/{db}", dsns[variable])


def test_the_poolers_are_pgbouncer_in_transaction_mode(rendered: Rendered) -> None:
    (cluster,) = rendered.of("Cluster")
    poolers = rendered.of("Pooler")
    assert sorted(p["spec"]["type"] for p in poolers.values()) == ["ro", "rw"]
    for name, pooler in poolers.items():
        assert pooler["apiVersion"] == "postgresql.cnpg.io/v1"
        spec = pooler["spec"]
        assert set(spec) == {"cluster", "instances", "type", "pgbouncer", "template"}, name
        assert spec["cluster"] == {"name": cluster}
        assert isinstance(spec["instances"], int)
        assert spec["instances"] >= 0
        assert name == f"{cluster}-pooler-{spec['type']}"
        assert set(spec["pgbouncer"]) == {"poolMode", "parameters"}
        assert spec["pgbouncer"]["poolMode"] == "transaction"
        parameters = spec["pgbouncer"]["parameters"]
        assert set(parameters) <= PGBOUNCER_PARAMETERS, name
        assert all(isinstance(v, str) and v.isdigit() for v in parameters.values()), name
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "pgbouncer"
        version = re.fullmatch(
            r"ghcr\.io/cloudnative-pg/pgbouncer:(\d+)\.(\d+)\.\d+", container["image"]
        )
        assert version, container["image"]
        if int(parameters.get("max_prepared_statements", "0")):
            assert (int(version[1]), int(version[2])) >= (1, 21), "max_prepared_statements"
        # The template is a pod template, so it validates like one.
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}}
        kubernetes_validate.validate(
            {**template, "template": spec["template"]}, KUBERNETES_VERSIONS[0], strict=True
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
        # Under TLS the kubelet's gRPC probe (plaintext only) asks the health port.
        probed = settings.health_port if settings.tls.enabled else settings.port_of(service)
        assert probe == {"port": probed, "service": key}
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
    for certificate in rendered.of("Certificate").values():
        secrets[certificate["spec"]["secretName"]] = CERTIFICATE_SECRET_KEYS
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


# --- the connection budget ----------------------------------------------------------

# Connections PostgreSQL keeps from the application: superuser_reserved_connections
# (its default when the Cluster leaves it out) and a margin for the operator's
# instance manager, its metrics exporter and an operator's psql sessions.
SUPERUSER_RESERVED_DEFAULT = 3
OPERATIONS_HEADROOM = 10
# PgBouncer's defaults for what a Pooler leaves out.
PGBOUNCER_DEFAULTS = {"default_pool_size": 20, "reserve_pool_size": 0, "max_client_conn": 100}
# Besides its pool for the application role, each PgBouncer holds one server
# connection for its auth_query user (CloudNativePG's cnpg_pooler_pgbouncer).
POOLER_AUTH_CONNECTIONS = 1
# What each worker process opens: services/task/worker.py create_worker_pool.
WORKER_MIN_POOL, WORKER_POOL_EXTRA = 4, 2


def process_connections(command: list[str], settings: Settings) -> Counter[str]:
    """The most PostgreSQL connections one process opens, by DSN: every pool at its
    maximum plus the process's LISTEN connection (read from the code; the counts are
    measured in tests/integration/scale/test_connection_budget.py)."""
    if command == ["protomesh", "migrate"]:
        return Counter({settings.database_url: 1})  # one owner session, advisory-locked
    module = command[2] if command[:2] == ["python", "-m"] else ""
    if module in ("gateway", ""):
        return Counter()  # the gateway holds no database credentials
    app, listen = app_dsn(settings), direct_dsn(settings)
    size = settings.db_pool_max
    if module == "services.task.worker":
        count = int(command[command.index("--count") + 1]) if "--count" in command else 0
        count = count or settings.task_worker.count
        # The worker's sessions (`app.worker = on`) and its wake-up listener both use
        # the app DSN: worker pods point it at the primary.
        return Counter({app: max(WORKER_MIN_POOL, count + WORKER_POOL_EXTRA)}) + Counter({app: 1})
    pools = {
        "services.document": Counter({app: size}),
        "services.task": Counter({app: size}),
        # The request pool and the hot-path pool (services/cost/service.py).
        "services.cost": Counter({app: 2 * size}),
        "services.search": Counter({app: size})
        + Counter(
            {settings.search_read_database_url: size if settings.search_read_database_url else 0}
        ),
    }[module]
    return pools + Counter({listen: 1})


@dataclass(frozen=True)
class Target:
    """Where a DSN leads: the primary or the replicas directly, or a Pooler."""

    kind: str  # "primary", "replica" or "pooler"
    name: str


def target_of(rendered: Rendered, dsn: str) -> Target:
    (cluster,) = rendered.of("Cluster")
    host = urlsplit(dsn).hostname or ""
    if dsn == OWNER_DSN or host == f"{cluster}-rw":
        return Target("primary", f"{cluster}-rw")
    if host in (f"{cluster}-ro", f"{cluster}-r"):
        return Target("replica", host)
    assert host in rendered.of("Pooler"), f"{rendered.name}: a DSN to {host!r}, not a database"
    return Target("pooler", host)


# The owner DSN CloudNativePG generates (protomesh-db-app's `uri`): the primary.
OWNER_DSN = "postgresql://protomesh:owner@cluster-generated-rw:5432/protomesh"


def container_settings(rendered: Rendered, container: Doc) -> Settings:
    """The settings a container's process reads: its ConfigMaps and Secrets, then `env`."""
    secrets = {name: s.get("stringData", {}) for name, s in rendered.of("Secret").items()}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(rendered.of("ConfigMap")[source["configMapRef"]["name"]]["data"])
        else:
            env.update(secrets[source["secretRef"]["name"]])
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            env[variable["name"]] = variable["value"]
        elif ref["name"] in secrets:
            env[variable["name"]] = secrets[ref["name"]][ref["key"]]
        else:  # generated by CloudNativePG: the owner's DSN
            env[variable["name"]] = OWNER_DSN
    return Settings.from_env(env)


def most_pods(rendered: Rendered, workload: Doc) -> int:
    """Pods of a workload at its autoscaler's maximum, plus a rollout's surge."""
    if workload["kind"] == "Job":
        return int(workload["spec"].get("parallelism", 1))
    name = workload["metadata"]["name"]
    scalers = [
        h
        for h in rendered.of("HorizontalPodAutoscaler").values()
        if h["spec"]["scaleTargetRef"]["name"] == name
    ]
    pods = scalers[0]["spec"]["maxReplicas"] if scalers else workload["spec"].get("replicas", 1)
    strategy = workload["spec"].get("strategy", {"type": "RollingUpdate"})
    if strategy["type"] == "Recreate":
        return int(pods)
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(surge, str):  # a percentage of the pods, rounded up
        surge = math.ceil(pods * int(surge.rstrip("%")) / 100)
    return int(pods + surge)


@dataclass
class Budget:
    clients: Counter[Target]  # connections the pods open, by where they lead
    server: Counter[str]  # PostgreSQL connections: "primary", "replica" (each)
    limits: dict[str, int]  # what PostgreSQL admits from the application
    pooler_clients: dict[str, tuple[int, int]]  # Pooler → (clients, max_client_conn)
    problems: list[str]


def connection_budget(rendered: Rendered) -> Budget:
    (cluster,) = rendered.of("Cluster").values()
    clients: Counter[Target] = Counter()
    problems: list[str] = []
    poolers = rendered.of("Pooler")
    for workload in rendered.workloads():
        pods = most_pods(rendered, workload)
        for container in containers(workload):
            settings = container_settings(rendered, container)
            for dsn, connections in process_connections(command_of(container), settings).items():
                target = target_of(rendered, dsn)
                clients[target] += pods * connections
                prepared = target.kind == "pooler" and int(
                    poolers[target.name]["spec"]["pgbouncer"]["parameters"].get(
                        "max_prepared_statements", "0"
                    )
                )
                if target.kind == "pooler" and not prepared and settings.db_statement_cache_size:
                    problems.append(
                        f"{workload['metadata']['name']}: asyncpg's statement cache through "
                        f"{target.name}, which keeps no prepared statements"
                    )
    server: Counter[str] = Counter()
    pooler_clients: dict[str, tuple[int, int]] = {}
    for target, connections in clients.items():
        if target.kind != "pooler":
            server[target.kind] += connections
    for name, pooler in poolers.items():
        spec = pooler["spec"]
        parameters = {**PGBOUNCER_DEFAULTS, **spec["pgbouncer"]["parameters"]}
        per_instance = (
            int(parameters["default_pool_size"])
            + int(parameters["reserve_pool_size"])
            + POOLER_AUTH_CONNECTIONS
        )
        server["primary" if spec["type"] == "rw" else "replica"] += spec["instances"] * per_instance
        routed = clients[Target("pooler", name)]
        # The Pooler's Service spreads connections, not load: all may reach one instance.
        pooler_clients[name] = (routed, int(parameters["max_client_conn"]))
        if routed and not spec["instances"]:
            problems.append(f"{name} runs no instance but {routed} connections go through it")
    if cluster["spec"]["instances"] == 1 and server["replica"]:
        problems.append("connections to replicas, but the cluster has none")
    parameters = cluster["spec"]["postgresql"]["parameters"]
    reserved = int(parameters.get("superuser_reserved_connections", SUPERUSER_RESERVED_DEFAULT))
    reserved += int(parameters.get("reserved_connections", 0))
    available = int(parameters["max_connections"]) - reserved - OPERATIONS_HEADROOM
    limits = {"primary": available, "replica": available}
    for role, used in server.items():
        if used > limits[role]:
            problems.append(
                f"{used} connections to the {role} at the maxima, {limits[role]} admitted"
            )
    for name, (routed, limit) in pooler_clients.items():
        if routed > limit:
            problems.append(f"{routed} clients of {name}, max_client_conn {limit}")
    return Budget(clients, server, limits, pooler_clients, problems)


def test_the_connection_budget_holds_at_the_autoscalers_maxima(rendered: Rendered) -> None:
    budget = connection_budget(rendered)
    assert not budget.problems, f"{rendered.name}: {budget.problems}"
    assert budget.server["primary"] > 0


def test_the_budget_catches_maxima_raised_past_it() -> None:
    rendered = Rendered("production", render(DEPLOY / "overlays/production"))
    rendered.of("HorizontalPodAutoscaler")["task-worker"]["spec"]["maxReplicas"] = 30
    problems = connection_budget(rendered).problems
    assert any("to the primary" in problem for problem in problems), problems
    rendered = Rendered("production", render(DEPLOY / "overlays/production"))
    del rendered.of("Pooler")["protomesh-db-pooler-rw"]["spec"]["pgbouncer"]["parameters"][
        "max_prepared_statements"
    ]
    assert any("statement cache" in p for p in connection_budget(rendered).problems)


def test_sessions_and_listeners_bypass_the_pooler(rendered: Rendered) -> None:
    """LISTEN and task-worker sessions need a server connection of their own."""
    for name, deployment in rendered.deployments.items():
        (container,) = containers(deployment)
        command = command_of(container)
        settings = container_settings(rendered, container)
        if command[-1] == "gateway":
            continue
        assert target_of(rendered, direct_dsn(settings)).kind == "primary", name
        if "services.task.worker" in command:
            assert target_of(rendered, app_dsn(settings)).kind == "primary", name


# --- TLS, the Ingress and the NetworkPolicies (docs/security.md) -----------------------

# A workload's role: whom it serves (its certificate must say server auth and name
# what its clients dial) and whether it dials other services (client auth).
SERVES = {"document", "search", "search-indexer", "task", "cost", "gateway"}
DIALS = {"gateway", "search-indexer", "task-worker"}
RESTART_WINDOW_HOURS = 30 * 24


def certificates_by_secret(rendered: Rendered) -> dict[str, Doc]:
    return {c["spec"]["secretName"]: c for c in rendered.of("Certificate").values()}


def tls_certificate_of(rendered: Rendered, deployment: Doc) -> Doc:
    """The Certificate whose Secret the pod mounts where PROTOMESH_TLS_CERT points."""
    (container,) = containers(deployment)
    settings = container_settings(rendered, container)
    directory = str(Path(settings.tls.cert).parent)
    assert {Path(p).parent for p in (settings.tls.key, settings.tls.ca)} == {Path(directory)}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert mount.get("readOnly") is True
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == mount["name"]]
    certificate: Doc = certificates_by_secret(rendered)[volume["secret"]["secretName"]]
    return certificate


def test_the_certificates_come_from_the_namespaces_ca(rendered: Rendered) -> None:
    issuers = rendered.of("Issuer")
    certificates = rendered.of("Certificate")
    for name, doc in [*issuers.items(), *certificates.items()]:
        assert doc["apiVersion"] == "cert-manager.io/v1", name
    (root,) = [n for n, i in issuers.items() if set(i["spec"]) == {"selfSigned"}]
    (ca_name,) = [n for n, c in certificates.items() if c["spec"].get("isCA")]
    ca = certificates[ca_name]["spec"]
    assert ca["issuerRef"] == {"kind": "Issuer", "name": root}
    (signer,) = [n for n, i in issuers.items() if i["spec"].get("ca")]
    assert issuers[signer]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    secrets = [c["spec"]["secretName"] for c in certificates.values()]
    assert len(secrets) == len(set(secrets))
    allowed = {"secretName", "issuerRef", "duration", "renewBefore", "privateKey", "usages"}
    for name, certificate in certificates.items():
        spec = certificate["spec"]
        assert spec["issuerRef"]["kind"] in ("Issuer", "ClusterIssuer"), name
        if spec["issuerRef"]["kind"] == "Issuer":
            assert spec["issuerRef"]["name"] in issuers, name
        elif name != "protomesh-public":  # only the public certificate leaves the namespace
            raise AssertionError(f"{name}: issued outside the namespace's CA")
        assert set(spec) <= allowed | {"isCA", "commonName", "dnsNames"}, name
        assert spec.get("dnsNames") or spec.get("commonName"), name
        assert set(spec.get("usages", [])) <= {"server auth", "client auth"}, name
        if name not in (ca_name, "protomesh-public"):
            assert spec["issuerRef"] == {"kind": "Issuer", "name": signer}, name
            # Processes read their certificate at start-up: cert-manager's renewal
            # leaves at least 30 days to restart them on the new one (docs/security.md).
            assert RESTART_WINDOW_HOURS <= _hours(spec["renewBefore"]) < _hours(spec["duration"])


def _hours(duration: str) -> int:
    match = re.fullmatch(r"(\d+)h", duration)
    assert match, duration
    return int(match[1])


def test_every_process_serves_and_dials_with_mutual_tls(rendered: Rendered) -> None:
    settings = rendered.settings
    assert settings.tls.enabled
    assert settings.tls.client_auth == "require"
    assert settings.tls.ca.endswith("/ca.crt")
    # A certificate shared by several workloads (search and its indexer) says what
    # each of them does with it, and no more.
    roles: dict[str, set[str]] = {}
    for name, deployment in rendered.deployments.items():
        certificate = tls_certificate_of(rendered, deployment)["metadata"]["name"]
        roles.setdefault(certificate, set())
        roles[certificate] |= {"server auth"} if name in SERVES else set()
        roles[certificate] |= {"client auth"} if name in DIALS else set()
    for certificate, needed in roles.items():
        assert set(rendered.of("Certificate")[certificate]["spec"]["usages"]) == needed, certificate
    # Each service's certificate names the address its clients dial.
    for service, _ in PROTOMESH_SERVICES.values():
        host = urlsplit(settings.address_of(service).replace("dns:///", "grpc://")).hostname or ""
        headless = rendered.of("Service")[host.split(".")[0]]
        for deployment in selected_deployments(rendered, headless["spec"]["selector"]):
            names = tls_certificate_of(rendered, deployment)["spec"]["dnsNames"]
            assert host in names, f"{rendered.name}: {service} is dialled as {host}: {names}"


def test_grpc_readiness_uses_the_plaintext_health_port(rendered: Rendered) -> None:
    port = rendered.settings.health_port
    assert port
    for name, deployment in rendered.deployments.items():
        (container,) = containers(deployment)
        if "readinessProbe" not in container or "grpc" not in container["readinessProbe"]:
            continue
        assert container["readinessProbe"]["grpc"]["port"] == port, name
        assert {"name": "health", "containerPort": port} in container["ports"], name


def test_the_gateway_serves_https_only(rendered: Rendered) -> None:
    gateway = rendered.deployments["gateway"]
    (container,) = containers(gateway)
    assert [p["name"] for p in container["ports"]] == ["https"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    annotations = gateway["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scheme"] == "https"
    (port,) = rendered.of("Service")["gateway"]["spec"]["ports"]
    assert port == {"name": "https", "port": 443, "targetPort": "https", "appProtocol": "https"}


def test_the_ingress_reaches_the_gateway_over_verified_tls(rendered: Rendered) -> None:
    namespace = rendered.docs[0]["metadata"]["namespace"]
    (ingress,) = rendered.of("Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    nginx = "nginx.ingress.kubernetes.io/"
    assert annotations[nginx + "backend-protocol"] == "HTTPS"
    assert annotations[nginx + "force-ssl-redirect"] == "true"
    assert annotations[nginx + "proxy-ssl-verify"] == "on"
    by_secret = certificates_by_secret(rendered)
    trust_namespace, trust_secret = annotations[nginx + "proxy-ssl-secret"].split("/")
    assert trust_namespace == namespace
    assert by_secret[trust_secret]["spec"]["usages"] == ["client auth"]
    gateway_names = tls_certificate_of(rendered, rendered.deployments["gateway"])["spec"]
    assert annotations[nginx + "proxy-ssl-name"] in gateway_names["dnsNames"]
    assert annotations[nginx + "proxy-ssl-name"] == f"gateway.{namespace}.svc"
    (tls,) = ingress["spec"]["tls"]
    public = by_secret[tls["secretName"]]["spec"]
    assert set(tls["hosts"]) <= set(public["dnsNames"])
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls["hosts"]
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = rendered.of("Service")[backend["name"]]
            assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
            assert selected_deployments(rendered, service["spec"]["selector"]) == [
                rendered.deployments["gateway"]
            ]


# NetworkPolicies, evaluated: pods are (namespace, labels, named ports); a flow is
# allowed when the destination admits it (or is not isolated for ingress) and the
# source lets it out (or is not isolated for egress).


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, int], ...] = ()
    address: str = ""  # outside the cluster (ipBlock peers)

    def label(self) -> dict[str, str]:
        return dict(self.labels)

    def port(self, name_or_number: int | str) -> int | None:
        if isinstance(name_or_number, int):
            return name_or_number
        return dict(self.ports).get(name_or_number)


def pod(name: str, namespace: str, labels: dict[str, str], **ports: int) -> Pod:
    return Pod(name, namespace, tuple(sorted(labels.items())), tuple(sorted(ports.items())))


def cluster_pods(rendered: Rendered) -> list[Pod]:
    namespace = rendered.docs[0]["metadata"]["namespace"]
    pods = []
    for doc in rendered.workloads():
        declared = {
            p["name"]: p["containerPort"] for c in containers(doc) for p in c.get("ports", [])
        }
        labels = doc["spec"]["template"]["metadata"]["labels"]
        pods.append(pod(doc["metadata"]["name"], namespace, labels, **declared))
    (cluster,) = rendered.of("Cluster")
    instance = {"cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance", "role": "primary"}
    pods.append(pod("postgres", namespace, instance, postgresql=5432, status=8000, metrics=9187))
    for name, pooler in rendered.of("Pooler").items():
        labels = {
            **pooler["spec"]["template"]["metadata"]["labels"],
            "cnpg.io/poolerName": name,
            "cnpg.io/cluster": cluster,  # a pooler pod is of the cluster too, not an instance
            "cnpg.io/podRole": "pooler",
        }
        pods.append(pod(name, namespace, labels, pgbouncer=5432, metrics=9127))
    return pods


OUTSIDERS = [
    pod("ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    pod("cnpg-operator", "cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}),
    pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, dns=53),
    pod("otel-collector", "observability", {"app": "otel-collector"}, otlp=4317),
    pod("stranger", "default", {"app": "stranger"}, http=8080),
    Pod("model-provider", "", (), (("https", 443),), address="203.0.113.10"),
    Pod("node-local", "", (), (("kubelet", 10250),), address="10.0.0.5"),
]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def peer_matches(peer: Doc, policy_namespace: str, other: Pod) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if not other.address:
            return False
        address = ipaddress.ip_address(other.address)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if other.address:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), other.label())


def policy_types(policy: Doc) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress"] + (["Egress"] if "egress" in spec else [])


def admitted(policies: list[Doc], subject: Pod, other: Pod, port: int, direction: str) -> bool:
    """Whether `subject`'s policies let a TCP connection on `port` in from `other`
    (direction "Ingress") or out to it ("Egress", `port` being `other`'s)."""
    target = subject if direction == "Ingress" else other
    peers_key, rules_key = ("from", "ingress") if direction == "Ingress" else ("to", "egress")
    relevant = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and selects(p["spec"]["podSelector"], subject.label())
        and direction in policy_types(p)
    ]
    if not relevant:
        return True  # not isolated in this direction
    for policy in relevant:
        for rule in policy["spec"].get(rules_key, []):
            peers = rule.get(peers_key)
            if peers and not any(
                peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers
            ):
                continue
            ports = rule.get("ports")
            if not ports or any(
                p.get("protocol", "TCP") == "TCP" and target.port(p["port"]) == port for p in ports
            ):
                return True
    return False


def allowed_flows(rendered: Rendered) -> set[tuple[str, str, int]]:
    policies = list(rendered.of("NetworkPolicy").values())
    inside = cluster_pods(rendered)
    flows = set()
    for source in inside + OUTSIDERS:
        for target in inside + OUTSIDERS:
            if source in OUTSIDERS and target in OUTSIDERS:
                continue
            for _, port in target.ports:
                if admitted(policies, target, source, port, "Ingress") and admitted(
                    policies, source, target, port, "Egress"
                ):
                    flows.add((source.name, target.name, port))
    return flows


def intended_flows(rendered: Rendered) -> set[tuple[str, str, int]]:
    settings = rendered.settings
    grpc = {
        service: settings.port_of(service) for service in ("document", "search", "task", "cost")
    }
    services = ["document", "search", "search-indexer", "task", "cost"]
    database_users = [*services, "task-worker", "protomesh-migrate"]
    poolers = list(rendered.of("Pooler"))
    protomesh = [*services, "gateway", "task-worker"]
    metrics = {
        d["metadata"]["name"]: p["containerPort"]
        for d in rendered.deployments.values()
        for c in containers(d)
        for p in c["ports"]
        if p["name"] == "metrics"
    }
    return {
        ("ingress-controller", "gateway", settings.gateway.port),
        ("prometheus", "gateway", settings.gateway.port),
        *(("gateway", s, port) for s, port in grpc.items()),
        ("search-indexer", "document", grpc["document"]),
        *(("task-worker", s, grpc[s]) for s in ("search", "document", "cost")),
        *((user, "postgres", 5432) for user in database_users),
        *((user, pooler, 5432) for user in services for pooler in poolers),
        *((pooler, "postgres", 5432) for pooler in poolers),
        ("postgres", "postgres", 5432),  # streaming replication
        ("cnpg-operator", "postgres", 8000),
        ("prometheus", "postgres", 9187),
        *(("prometheus", pooler, 9127) for pooler in poolers),
        *(("prometheus", name, port) for name, port in metrics.items()),
        *((name, "kube-dns", 53) for name in [*protomesh, "protomesh-migrate"]),
        *((name, "otel-collector", 4317) for name in protomesh),
        *((name, "model-provider", 443) for name in ("search", "search-indexer", "task-worker")),
    }


def test_network_policies_allow_exactly_the_intended_flows(rendered: Rendered) -> None:
    # The database's and the Poolers' own egress (the API server, object storage)
    # is CloudNativePG's business: only what reaches them, and each other, is ours.
    operated = {"postgres", *rendered.of("Pooler")}
    outside = {p.name for p in OUTSIDERS}
    allowed = {
        (source, target, port)
        for source, target, port in allowed_flows(rendered)
        if not (source in operated and target in outside)
    }
    intended = intended_flows(rendered)
    assert not allowed - intended, (
        f"{rendered.name}: allowed, not intended: {sorted(allowed - intended)}"
    )
    assert not intended - allowed, (
        f"{rendered.name}: intended, not allowed: {sorted(intended - allowed)}"
    )


def test_every_protomesh_pod_is_isolated_both_ways(rendered: Rendered) -> None:
    policies = list(rendered.of("NetworkPolicy").values())
    stranger = next(p for p in OUTSIDERS if p.name == "stranger")
    for target in cluster_pods(rendered):
        for direction in ("Ingress", "Egress"):
            if direction == "Egress" and target.name in ("postgres", *rendered.of("Pooler")):
                continue  # the operator's pods reach the API server and object storage
            assert not admitted(policies, target, stranger, 8080, direction), (
                f"{rendered.name}: {target.name} is not isolated for {direction}"
            )


def test_the_flow_check_catches_a_missing_or_a_loose_policy() -> None:
    rendered = Rendered("base", render(DEPLOY / "base"))
    del rendered.by_kind["NetworkPolicy"]["task-worker"]
    missing = intended_flows(rendered) - allowed_flows(rendered)
    assert ("task-worker", "search", 50052) in missing
    rendered = Rendered("base", render(DEPLOY / "base"))
    rendered.of("NetworkPolicy")["cost"]["spec"]["ingress"][0]["from"] = []
    loose = allowed_flows(rendered) - intended_flows(rendered)
    assert ("stranger", "cost", 50054) in loose
