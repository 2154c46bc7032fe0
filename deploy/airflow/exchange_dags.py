"""The exchange's Airflow DAGs: what the original design asked of Airflow.

``exchange_daily`` (06:00 UTC): start-of-day checks (broker reachable, topics
present, workers healthy), then the daily compaction of yesterday's archive and
the export of the original CSV files from it.

``exchange_replay`` (on demand): a day's orders from the archive into a fresh
app id (``params.app_id``), whose workers then rebuild the books, trades and
analytics of that day from scratch.

Every task is a ``KubernetesPodOperator`` running the project's image with the
settings of ``deploy/k8s`` (ConfigMap ``exchange-config``, Secret
``exchange-secrets``). ``EXCHANGE_IMAGE`` and ``EXCHANGE_NAMESPACE`` in the
scheduler's environment pick the image and the namespace.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

IMAGE = os.environ.get("EXCHANGE_IMAGE", "exchange:latest")
NAMESPACE = os.environ.get("EXCHANGE_NAMESPACE", "exchange")
WORKERS = [
    f"http://exchange-{n}.exchange-workers.{NAMESPACE}.svc.cluster.local:6066" for n in range(3)
]

SETTINGS = [
    k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="exchange-config")),
    k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="exchange-secrets")),
]
DEFAULTS = {
    "owner": "exchange",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=2),
}


def exchange(
    task_id: str, *arguments: str, env: dict[str, str] | None = None
) -> KubernetesPodOperator:
    """A pod running ``exchange <arguments>`` from the project's image."""
    return KubernetesPodOperator(
        task_id=task_id,
        name=f"exchange-{task_id.replace('_', '-')}",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["exchange"],
        arguments=list(arguments),
        env_from=SETTINGS,
        env_vars=env or {},
        get_logs=True,
        on_finish_action="delete_pod",
    )


with DAG(
    dag_id="exchange_daily",
    description="Start-of-day checks, archive compaction and the original CSV export",
    schedule="0 6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    max_active_runs=1,  # one compaction of the archive at a time
    tags=["exchange"],
) as daily:
    broker = exchange("check_broker_and_topics", "check")
    workers = exchange(
        "check_workers", "check", *[arg for url in WORKERS for arg in ("--worker", url)]
    )
    compaction = exchange("compact_archive", "archive", "--compact")
    # yesterday (UTC), complete by 06:00; Kubernetes expands $(EXCHANGE_ARCHIVE_URL) from
    # the pod's environment (the ConfigMap)
    day = "{{ macros.ds_add(ds, -1) }}"
    out = f"$(EXCHANGE_ARCHIVE_URL)/exports/{day}"
    export = exchange("export_csv", "export", "--from-archive", "--date", day, "--out", out)
    broker >> workers >> compaction >> export


with DAG(
    dag_id="exchange_replay",
    description="Replay a day's archived orders into a fresh app id",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    params={"date": "2026-01-01", "app_id": "exchange-replay"},
    max_active_runs=1,
    tags=["exchange"],
) as replay:
    # every topic of the fresh app is its own: nothing it does reaches production's topics
    # (start its workers with the same variables; README "Deployment")
    fresh = {"EXCHANGE_APP_ID": "{{ params.app_id }}"} | {
        f"EXCHANGE_{name.upper()}_TOPIC": f"{{{{ params.app_id }}}}-{name}"
        for name in ("orders", "trades", "events", "sma", "profit", "pnl", "dlq")
    }
    check = exchange("check_broker", "check")
    orders = exchange("replay_orders", "replay", "--archive-date", "{{ params.date }}", env=fresh)
    check >> orders
