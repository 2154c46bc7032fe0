"""The Airflow DAGs load in Airflow's own DagBag, in an Airflow environment made once.

Airflow is far too large to share the project's environment: the first run creates
``.venv-airflow`` beside the project's ``.venv`` (a few minutes), later runs reuse it.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-airflow"
PYTHON = VENV / "bin" / "python"
PACKAGES = ["apache-airflow>=3.0,<4", "apache-airflow-providers-cncf-kubernetes>=10"]

LOAD = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
def env_of(task):
    env = getattr(task, "env_vars", None) or {}
    if isinstance(env, dict):
        return list(env.items())
    return [(e.name, e.value) for e in env]
bag = DagBag(dag_folder=sys.argv[1])  # examples: AIRFLOW__CORE__LOAD_EXAMPLES=False
print(json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "schedule": str(getattr(dag, "schedule", None) or getattr(dag, "timetable", "")),
            "tasks": {
                t.task_id: {
                    "downstream": sorted(t.downstream_task_ids),
                    "command": [*getattr(t, "cmds", []), *getattr(t, "arguments", [])],
                    "image": getattr(t, "image", None),
                    "operator": type(t).__name__,
                    "topics": {
                        name: value for name, value in env_of(t) if name.endswith("_TOPIC")
                    },
                }
                for t in dag.tasks
            },
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    marker = VENV / ".installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        installed = subprocess.run(
            [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *PACKAGES],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stderr[-4000:]
        marker.write_text("\n".join(PACKAGES))
    return PYTHON


@pytest.fixture(scope="session")
def dagbag(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PATH": str(airflow_python.parent),
    }
    answer = subprocess.run(
        [str(airflow_python), "-c", LOAD, str(ROOT / "deploy" / "airflow")],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return json.loads(answer.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_dags_load_without_errors(dagbag: dict[str, Any]) -> None:
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == {"exchange_daily", "exchange_replay"}


def test_the_daily_dag_checks_then_compacts_then_exports(dagbag: dict[str, Any]) -> None:
    daily = dagbag["dags"]["exchange_daily"]["tasks"]
    order = ["check_broker_and_topics", "check_workers", "compact_archive", "export_csv"]
    for earlier, later in itertools.pairwise(order):
        assert daily[earlier]["downstream"] == [later]
    assert daily["export_csv"]["downstream"] == []
    assert {t["operator"] for t in daily.values()} == {"KubernetesPodOperator"}
    assert daily["check_broker_and_topics"]["command"] == ["exchange", "check"]
    assert daily["check_workers"]["command"].count("--worker") == 3
    assert daily["compact_archive"]["command"] == ["exchange", "archive", "--compact"]
    export = daily["export_csv"]["command"]
    assert export[:4] == ["exchange", "export", "--from-archive", "--date"]
    assert "ds_add(ds, -1)" in export[4]  # yesterday's partitions, not the whole archive


def test_the_replay_dag_sends_a_days_orders_to_a_fresh_app(dagbag: dict[str, Any]) -> None:
    replay = dagbag["dags"]["exchange_replay"]["tasks"]
    assert replay["check_broker"]["downstream"] == ["replay_orders"]
    command = replay["replay_orders"]["command"]
    assert command[:3] == ["exchange", "replay", "--archive-date"]
    topics = replay["replay_orders"]["topics"]
    assert topics and all(value.startswith("{{ params.app_id }}-") for value in topics.values())
    assert "EXCHANGE_TRADES_TOPIC" in topics  # outputs too: nothing reaches production's
