"""The deployment files: Kubernetes manifests against the Kubernetes schemas, and the image,
Compose file and manifests agreeing with the code they run."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from exchange_app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [
        d for d in manifests() if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    return found


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_passes_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.stem != "kustomization")


def test_the_workers_are_a_statefulset_with_their_own_volumes_and_health() -> None:
    workers = one("StatefulSet")
    spec, pod = workers["spec"], workers["spec"]["template"]["spec"]
    [container] = pod["containers"]
    headless = one("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert one("Service", "exchange-web")["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert one("PodDisruptionBudget")["spec"]["selector"] == spec["selector"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    # longer than Faust's own shutdown (its agents' and producer's timeouts, ~30 s)
    assert pod["terminationGracePeriodSeconds"] >= 60
    [claim] = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == dockerfile_env()["EXCHANGE_DATA_DIR"]
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {one("ConfigMap")["metadata"]["name"], one("Secret")["metadata"]["name"]}
    hosts = one("ConfigMap")["data"]["EXCHANGE_PEER_HOSTS"].split(",")
    advertised = {e["name"]: e.get("value") for e in container["env"]}
    assert len(hosts) == spec["replicas"]
    for n, host in enumerate(hosts):  # each pod's advertised name is an allowed peer
        assert (
            advertised["EXCHANGE_WEB_ADVERTISED_HOST"].replace(
                "$(POD_NAME)", f"{workers['metadata']['name']}-{n}"
            )
            == host
        )


def test_the_configuration_is_settings_the_worker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    config = one("ConfigMap")["data"]
    secret = one("Secret")["stringData"]
    for name in [*config, *secret]:
        if name.startswith("EXCHANGE_"):
            assert name.removeprefix("EXCHANGE_").lower() in Settings.model_fields, name
    for name, value in {**config, **secret}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_password


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env |= dict(part.split("=", 1) for part in shlex.split(line[4:]))
    return env


def test_the_image_runs_the_procfiles_worker_as_a_user_with_a_health_check() -> None:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    entry = next(line for line in final if line.startswith("ENTRYPOINT "))
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert yaml.safe_load(entry.removeprefix("ENTRYPOINT ")) == shlex.split(
        procfile["worker"].removeprefix("exec ")
    )
    user = next(line for line in final if line.startswith("USER "))
    assert user.split()[1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "/health" in line for line in final)
    assert any(line.startswith("VOLUME") and "/data" in line for line in final)


def test_the_dockerfile_passes_hadolint() -> None:
    """Docker's best practices, checked without Docker (hadolint from its wheel)."""
    hadolint = Path(sys.executable).with_name("hadolint")
    found = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_the_compose_file_follows_the_compose_specification() -> None:
    """Parsed by a Compose-spec validator after YAML's merge keys are resolved, as Docker
    Compose itself reads them."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    parsed = PyCompose.from_json(json.dumps(compose))
    parsed.validate()
    assert parsed.service_names() == ["kafka", "worker-1", "worker-2", "archive", "producer"]


def test_compose_runs_two_workers_on_kafka_that_may_ask_each_other() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    workers = [name for name in services if name.startswith("worker-")]
    assert len(workers) == 2
    for name in workers:
        env = services[name]["environment"]
        assert env["EXCHANGE_BROKER"] == "kafka://kafka:9092"
        assert env["EXCHANGE_WEB_ADVERTISED_HOST"] == name
        assert name in env["EXCHANGE_PEER_HOSTS"].split(",")
        assert services[name]["volumes"][0].endswith(":/data")
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"]  # KRaft, no ZooKeeper
    assert services["archive"]["entrypoint"] == shlex.split(
        dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())[
            "archive"
        ].removeprefix("exec ")
    )
