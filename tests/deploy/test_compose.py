"""The deployment files agree with the code: services, settings, secrets and entry points.

Docker's engine is not available where the tests run, so this checks what can be checked without it.
"""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.paths import PROJECT

COMPOSE = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]


def env_of(service: str) -> dict:
    return SERVICES[service].get("environment", {})


def code_text() -> str:
    files = [
        *PROJECT.glob("recsys_*/**/*.py"),
        *PROJECT.glob("jobs/*.py"),
        *PROJECT.glob("dags/*.py"),
    ]
    return "\n".join(p.read_text() for p in files)


def test_every_component_the_dag_needs_is_a_service():
    assert set(AIRFLOW + ["postgres", "redis", "spark-master", "spark-worker"]) <= set(SERVICES)
    commands = {name: SERVICES[name]["command"] for name in AIRFLOW}
    assert commands["airflow-apiserver"] == ["airflow", "api-server"]
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]


def test_airflow_runs_celery_on_postgres_and_redis():
    env = env_of("airflow-scheduler")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert env["RECSYS_WAREHOUSE_URL"].startswith("postgresql://") and env[
        "RECSYS_WAREHOUSE_URL"
    ].endswith("/recsys")
    assert "CREATE DATABASE airflow" in (PROJECT / "docker" / "postgres-init.sql").read_text()


def test_recsys_settings_in_compose_are_read_by_the_code_and_the_config_exists():
    code = code_text()
    names = {k for k in env_of("airflow-worker") if k.startswith("RECSYS_")}
    assert names >= {"RECSYS_DATA_DIR", "RECSYS_WORK_DIR", "RECSYS_WAREHOUSE_URL", "RECSYS_CONFIG"}
    for name in names:
        assert f'"{name}"' in code or f"'{name}'" in code or name in code, (
            f"{name} is set but never read"
        )
    config = env_of("airflow-worker")["RECSYS_CONFIG"].replace("/opt/recsys/", "")
    from recsys_core.config import load_config

    assert load_config(PROJECT / config).spark.master == "spark://spark-master:7077"


def test_no_secret_is_committed_and_every_variable_is_documented():
    text = (PROJECT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    documented = set(re.findall(r"^(\w+)=", (PROJECT / ".env.example").read_text(), re.M))
    assert used <= documented, used - documented
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|FERNET_KEY", key):
                assert str(value).startswith("${"), (
                    f"{name}: {key} is a literal, not taken from .env"
                )
            if "://" in str(value) and "@" in str(
                value
            ):  # credentials inside URLs come from .env too
                assert "${POSTGRES_PASSWORD}" in str(value), (
                    f"{name}: {key} embeds a literal password"
                )
    example = (PROJECT / ".env.example").read_text()
    assert re.search(r"^AIRFLOW_FERNET_KEY=$", example, re.M) and re.search(
        r"^AIRFLOW_JWT_SECRET=$", example, re.M
    )


def test_image_copies_existing_paths_and_its_entry_points_exist():
    dockerfile = (PROJECT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (PROJECT / source).exists(), f"Dockerfile copies missing {source}"
    entry = PROJECT / "docker" / "entrypoint.sh"
    assert entry.stat().st_mode & 0o111, "entrypoint must be executable"
    assert "org.apache.spark.deploy.master.Master" in entry.read_text()
    import pyspark

    assert (Path(pyspark.__file__).parent / "bin" / "spark-class").exists()


def test_the_airflow_commands_the_services_run_exist_in_the_locked_environment():
    airflow = str(Path(sys.executable).with_name("airflow"))
    for args in (
        ["api-server", "--help"],
        ["scheduler", "--help"],
        ["dag-processor", "--help"],
        ["triggerer", "--help"],
        ["celery", "worker", "--help"],
    ):
        proc = subprocess.run(
            [airflow, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "PATH": "/usr/bin:/bin",
                "AIRFLOW_HOME": "/tmp/recsys-compose-check",
            },
        )
        assert proc.returncode == 0, (args, proc.stderr[-2000:])


def test_spark_default_resolves_to_the_compose_spark_master(monkeypatch):
    """The Spark tasks' master: AIRFLOW_CONN_SPARK_DEFAULT read by Airflow's Connection and the Spark
    provider's own hook (environment only, no database), as in the containers."""
    from airflow.models.connection import Connection
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    value = env_of("airflow-worker")["AIRFLOW_CONN_SPARK_DEFAULT"]
    conn = Connection(conn_id="spark_default", uri=value)
    assert (conn.conn_type, conn.host, conn.port) == ("spark", "spark-master", 7077)
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", value)
    resolved = SparkSubmitHook(conn_id="spark_default")._connection
    assert (
        resolved["master"]
        == "spark://spark-master:7077"
        == env_of("spark-worker")["SPARK_MASTER_URL"]
    )
    assert resolved["deploy_mode"] is None  # client mode: the driver runs in the Airflow worker
    assert "7077:7077" in SERVICES["spark-master"]["ports"]
