"""The deployment files agree with the code and are safe to run: services, settings, secrets, entry
points, what each container may see, what the host may reach, and the database roles.

Docker's engine is not available where the tests run, so this checks what can be checked without it:
the compose file as YAML, docker/entrypoint.sh run by bash with a stand-in Spark, and
docker/postgres-init.sh run by psql against the local PostgreSQL under throwaway names.
"""

import base64
import hashlib
import hmac
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.paths import PROJECT

COMPOSE_TEXT = (PROJECT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (PROJECT / ".env.example").read_text()
ENTRYPOINT = PROJECT / "docker" / "entrypoint.sh"
PG_INIT = PROJECT / "docker" / "postgres-init.sh"
DEPLOYMENT_DOC = PROJECT / "docs" / "deployment.md"
AIRFLOW = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
SPARK = ["spark-master", "spark-worker"]
# what the pipeline's tasks read: set on the airflow-worker, the only service that runs them
PIPELINE_VARS = {
    "RECSYS_DATA_DIR",
    "RECSYS_WORK_DIR",
    "RECSYS_CONFIG",
    "RECSYS_ALERT_WEBHOOK",
    "AIRFLOW_CONN_RECSYS_WAREHOUSE",
}
# which services may see each secret of .env, and no other
SECRET_READERS = {
    "POSTGRES_PASSWORD": {"postgres"},
    "AIRFLOW_DB_PASSWORD": {"postgres", *AIRFLOW},
    "RECSYS_WRITER_PASSWORD": {"postgres", "airflow-worker"},
    "RECSYS_READER_PASSWORD": {"postgres"},
    "AIRFLOW_FERNET_KEY": set(AIRFLOW),
    "AIRFLOW_JWT_SECRET": set(AIRFLOW),
    "SPARK_AUTH_SECRET": {"spark-master", "spark-worker", "airflow-worker"},
}
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|FERNET_KEY)$"
)  # names of secrets, not e.g. *_PASSWORDS_FILE
LOOPBACK = {"127.0.0.1", "::1", "[::1]", "localhost"}


def env_of(service: str) -> dict:
    return SERVICES[service].get("environment") or {}


def variables_in(value) -> set[str]:
    return set(re.findall(r"(?<!\$)\$\{(\w+)", str(value)))  # $${X} is for the container's shell


def code_text() -> str:
    files = [
        *PROJECT.glob("recsys_*/**/*.py"),
        *PROJECT.glob("jobs/*.py"),
        *PROJECT.glob("dags/*.py"),
    ]
    return "\n".join(p.read_text() for p in files)


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of every port a service publishes; '' = every interface."""
    out = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            out.append(
                (str(spec.get("host_ip", "")), str(spec.get("published", "")), str(spec["target"]))
            )
            continue
        parts = str(spec).split("/")[0].rsplit(":", 2)
        parts = [""] * (
            3 - len(parts)
        ) + parts  # "8080" publishes on a random port of every interface
        out.append((parts[0], parts[1], parts[2]))
    return out


# --- services and the Airflow settings -------------------------------------------------------------


def test_every_component_the_dag_needs_is_a_service():
    assert set(AIRFLOW + ["postgres", "redis", *SPARK]) <= set(SERVICES)
    commands = {name: SERVICES[name]["command"] for name in AIRFLOW}
    assert commands["airflow-apiserver"] == ["airflow", "api-server"]
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert SERVICES["spark-master"]["command"] == ["spark-master"]
    assert SERVICES["spark-worker"]["command"] == ["spark-worker"]


def test_services_start_in_order_on_healthy_dependencies():
    for name in AIRFLOW:
        deps = SERVICES[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "spark-master"):
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD", name
    assert SERVICES["spark-worker"]["depends_on"]["spark-master"]["condition"] == "service_healthy"
    # the execution API and the DAG/trigger updates go through the API server: start once it answers
    for name in (
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    ):
        assert SERVICES[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def healthcheck_command(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), (service, test)
    return " ".join(test[1:])


def test_every_long_running_service_has_a_healthcheck_that_asks_the_component_itself():
    """As in Airflow's own compose file: the API server's and the scheduler's HTTP health, the DAG
    processor's and triggerer's heartbeat in the metadata database (`airflow jobs check`), the Celery
    worker's answer to a ping; each Python one-liner compiles."""
    expected = {
        "airflow-apiserver": "http://localhost:8080/api/v2/version",
        "airflow-scheduler": "http://localhost:8974/health",
        "airflow-dag-processor": "airflow jobs check --job-type DagProcessorJob --hostname",
        "airflow-triggerer": "airflow jobs check --job-type TriggererJob --hostname",
        "airflow-worker": "celery --app airflow.providers.celery.executors.celery_executor.app "
        "inspect ping -d",
        "spark-master": "7077",
        "spark-worker": "8081",
    }
    for service, probe in expected.items():
        command = healthcheck_command(service)
        assert probe in command, (service, command)
        check = SERVICES[service]["healthcheck"]
        assert check.get("interval") and check.get("retries"), service
        if SERVICES[service]["healthcheck"]["test"][1] == "python":
            compile(SERVICES[service]["healthcheck"]["test"][3], service, "exec")
    assert env_of("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert "airflow-init" not in {s for s in SERVICES if "healthcheck" in SERVICES[s]}
    # the module the worker's ping names holds the Celery app
    probe = "from airflow.providers.celery.executors.celery_executor import app; print(type(app).__name__)"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW_HOME": "/tmp/recsys-compose-check"},
    )
    assert proc.stdout.strip().splitlines()[-1:] == ["Celery"], proc.stderr[-2000:]


def test_the_data_volume_is_writable_by_the_user_the_containers_run_as():
    """On Linux a bind mount keeps the host's owner: every service writing ./data runs as AIRFLOW_UID
    (the host user, from .env) and group 0; airflow-init, root for its first command only, makes the
    data folders that user's, then drops to it; the image's writable folders are group 0's."""
    for name, service in SERVICES.items():
        mounts = [str(v) for v in service.get("volumes") or []]
        if any(m.startswith("./data:") for m in mounts) and name != "airflow-init":
            assert service["user"] == "${AIRFLOW_UID:-50000}:0", name
    init = SERVICES["airflow-init"]
    assert init["user"] == "0:0"
    script = init["command"][-1]
    assert 'find /data/work /opt/airflow/logs ! -user "$${AIRFLOW_UID}" -exec chown' in script
    assert '"$${AIRFLOW_UID}" != 0' in script  # never root
    assert env_of("spark-worker")["SPARK_WORKER_DIR"].startswith("/tmp/")
    assert (
        script.strip()
        .splitlines()[-1]
        .startswith(
            'exec setpriv --reuid "$${AIRFLOW_UID}" --regid 0 --clear-groups airflow db migrate'
        )
    )
    assert env_of("airflow-init")["AIRFLOW_UID"] == "${AIRFLOW_UID:-50000}"
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert "--gid 0 airflow" in dockerfile and "chmod -R g=u /opt/airflow /data" in dockerfile
    assert "ENV HOME=/home/airflow" in dockerfile  # any uid finds a writable HOME (spark-conf)
    assert "chmod g+w /etc/passwd" in dockerfile  # the entrypoint names an unknown uid (below)
    assert re.search(r"^AIRFLOW_UID=\d+$", ENV_EXAMPLE, re.M)


def test_airflow_runs_celery_on_its_own_database_role_and_redis():
    for name in AIRFLOW:
        env = env_of(name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY")
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            # the metadata owner `airflow` made by docker/postgres-init.sh, not the superuser
            assert re.fullmatch(
                r"(db\+)?postgresql\+psycopg://airflow:\$\{AIRFLOW_DB_PASSWORD\}@postgres:5432/airflow",
                env[key],
            ), (name, key, env[key])
    init = PG_INIT.read_text()
    assert "AIRFLOW_DB_USER:-airflow}" in init and "AIRFLOW_DB:-airflow}" in init


def test_recsys_settings_in_compose_are_read_by_the_code_and_the_config_exists():
    code = code_text()
    names = {k for k in env_of("airflow-worker") if k.startswith("RECSYS_")}
    assert names == PIPELINE_VARS - {"AIRFLOW_CONN_RECSYS_WAREHOUSE"}
    for name in names:
        assert name in code, f"{name} is set but never read"
    assert "RECSYS_WAREHOUSE_URL" not in COMPOSE_TEXT  # the warehouse is the connection now ...
    assert "AIRFLOW_CONN_RECSYS_WAREHOUSE" in code or '"recsys_warehouse"' in code  # read by code
    config = env_of("airflow-worker")["RECSYS_CONFIG"].replace("/opt/recsys/", "")
    from recsys_core.config import load_config

    assert load_config(PROJECT / config).spark.master == "spark://spark-master:7077"


# --- finding 1: what the host can reach, what each container sees -----------------------------------


def test_no_spark_port_and_nothing_but_the_api_server_is_published_beyond_the_host():
    for name, service in SERVICES.items():
        for host_ip, _port, target in published(service):
            if name in SPARK:
                assert target != "7077", f"{name} publishes Spark's RPC port"
                assert host_ip in LOOPBACK, (
                    f"{name} publishes {target} on {host_ip or 'every interface'}"
                )
            elif host_ip not in LOOPBACK:
                assert (name, target) == ("airflow-apiserver", "8080"), (name, host_ip, target)
    assert published(SERVICES["spark-master"]) == [("127.0.0.1", "8081", "8081")]
    assert not published(SERVICES["postgres"]) and not published(SERVICES["redis"])


def test_no_service_reads_the_whole_env_file():
    assert "env_file" not in COMPOSE_TEXT
    for name, service in SERVICES.items():
        assert "env_file" not in service, name


def test_each_secret_reaches_only_the_services_that_need_it():
    seen: dict[str, set[str]] = {}
    for name in SERVICES:
        for value in env_of(name).values():
            for var in variables_in(value):
                seen.setdefault(var, set()).add(name)
    for var, readers in SECRET_READERS.items():
        assert seen.get(var) == readers, (var, seen.get(var), readers)
    assert {v for v in seen if SECRET_NAME.search(v)} <= set(SECRET_READERS)


def test_spark_services_see_only_what_spark_needs():
    for name in SPARK:
        env = env_of(name)
        assert set(env) <= {
            "SPARK_MASTER_URL",
            "SPARK_WORKER_MEMORY",
            "SPARK_WORKER_DIR",
            "SPARK_AUTH_SECRET",
        }, name
        assert env["SPARK_AUTH_SECRET"].startswith("${SPARK_AUTH_SECRET:?"), name
        assert set().union(*map(variables_in, env.values())) == {"SPARK_AUTH_SECRET"}, name
        mounts = " ".join(map(str, SERVICES[name].get("volumes") or []))
        assert "airflow" not in mounts, name
    assert env_of("spark-worker")["SPARK_MASTER_URL"] == "spark://spark-master:7077"


def test_only_the_worker_sees_the_pipeline_settings_and_the_warehouse():
    assert PIPELINE_VARS <= set(env_of("airflow-worker"))
    for name in SERVICES:
        if name == "airflow-worker":
            continue
        keys = set(env_of(name))
        assert not keys & PIPELINE_VARS, (name, keys & PIPELINE_VARS)
        recsys = {k for k in keys if k.startswith("RECSYS_")}
        # the postgres container sets the warehouse roles' passwords, nothing else of the pipeline
        assert recsys <= (
            {"RECSYS_WRITER_PASSWORD", "RECSYS_READER_PASSWORD"} if name == "postgres" else set()
        ), name


def test_the_warehouse_connection_is_the_least_privilege_writer():
    from airflow.models.connection import Connection

    value = env_of("airflow-worker")["AIRFLOW_CONN_RECSYS_WAREHOUSE"]
    assert value == "postgresql://recsys_writer:${RECSYS_WRITER_PASSWORD}@postgres:5432/recsys"
    conn = Connection(
        conn_id="recsys_warehouse", uri=value.replace("${RECSYS_WRITER_PASSWORD}", "pw")
    )
    assert (conn.conn_type, conn.host, conn.port, conn.schema, conn.login, conn.password) == (
        "postgres",
        "postgres",
        5432,
        "recsys",
        "recsys_writer",
        "pw",
    )
    init = PG_INIT.read_text()  # the names the roles get in compose: the script's defaults
    assert "RECSYS_WRITER:-recsys_writer}" in init and "RECSYS_DB:-recsys}" in init
    assert "RECSYS_READER:-recsys_reader}" in init


def test_no_secret_is_committed_and_every_variable_is_documented():
    used = variables_in(COMPOSE_TEXT)
    example = dict(re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE, re.M))
    assert used <= set(example), used - set(example)
    for var, value in example.items():
        if SECRET_NAME.search(var):
            assert value == "", f".env.example commits a value for {var}"
    assert set(SECRET_READERS) <= set(example)
    for name in SERVICES:
        for key, value in env_of(name).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), (
                    f"{name}: {key} is a literal, not taken from .env"
                )
            for password in re.findall(r"://[^/@\s]*:([^@/\s]*)@", str(value)):
                assert re.fullmatch(r"\$\{\w*PASSWORD\w*\}", password), (
                    f"{name}: {key} embeds a literal password"
                )


# --- finding 1: Spark authentication, configured by the entrypoint ------------------------------------


def test_spark_authenticates_with_the_secret_of_the_environment_never_a_command_line():
    assert "spark.authenticate.secret" not in COMPOSE_TEXT and "-Dspark" not in COMPOSE_TEXT
    for name in SPARK + ["airflow-worker"]:  # the worker runs the drivers (client mode)
        assert "SPARK_AUTH_SECRET" in env_of(name), name
        assert not any(
            k.startswith(("SPARK_DAEMON_", "SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS"))
            for k in env_of(name)
        )


def run_entrypoint(
    tmp_path: Path, *command: str, **env: str
) -> tuple[subprocess.CompletedProcess, Path]:
    """docker/entrypoint.sh under bash, as the image runs it, with a stand-in Spark whose spark-class
    records its arguments and environment, and every external command behind a shim that records its
    argv (what `ps` would show)."""
    real_path = "/usr/local/bin:/usr/bin:/bin"
    record = tmp_path / "record"
    record.mkdir(exist_ok=True)
    spark_home = tmp_path / "spark"
    (spark_home / "bin").mkdir(parents=True, exist_ok=True)
    stub = spark_home / "bin" / "spark-class"
    stub.write_text(
        f'#!/bin/bash\nprintf "%s\\n" "$@" >{record}/spark-args\nenv >{record}/spark-env\n'
    )
    stub.chmod(0o755)
    shims = tmp_path / "shims"
    if not shims.exists():
        shims.mkdir()
        shim = tmp_path / "shim"
        shim.write_text(
            '#!/bin/bash\nprintf "%s " "${0##*/}" "$@" >>"$ARGV_RECORD"; echo >>"$ARGV_RECORD"\n'
            f'PATH={real_path} exec "${{0##*/}}" "$@"\n'
        )
        shim.chmod(0o755)
        for folder in real_path.split(":"):
            for exe in Path(folder).iterdir() if Path(folder).is_dir() else ():
                if not (shims / exe.name).exists():
                    (shims / exe.name).symlink_to(shim)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(ENTRYPOINT), *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": f"{shims}:{real_path}",
            "HOME": str(home),
            "SPARK_HOME": str(spark_home),
            "ARGV_RECORD": str(record / "argv"),
            "SPARK_MASTER_URL": "spark://spark-master:7077",
            **env,
        },
    )
    return proc, record


@pytest.mark.parametrize("daemon", ["spark-master", "spark-worker"])
def test_spark_daemons_get_the_secret_in_a_private_spark_defaults_conf(tmp_path, daemon):
    secret = "s3cr3t-" + uuid.uuid4().hex
    proc, record = run_entrypoint(tmp_path, daemon, SPARK_AUTH_SECRET=secret)
    assert proc.returncode == 0, proc.stderr
    conf_dir = tmp_path / "home" / "spark-conf"
    conf = conf_dir / "spark-defaults.conf"
    assert conf.read_text().splitlines() == [
        "spark.authenticate true",
        f"spark.authenticate.secret {secret}",
    ]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert stat.S_IMODE(conf_dir.stat().st_mode) == 0o700
    args = (record / "spark-args").read_text().splitlines()
    main = (
        "org.apache.spark.deploy.master.Master"
        if daemon == "spark-master"
        else "org.apache.spark.deploy.worker.Worker"
    )
    assert args[0] == main
    spark_env = (record / "spark-env").read_text()
    assert f"SPARK_CONF_DIR={conf_dir}\n" in spark_env
    # the secret is on no process's command line, and not in the daemon's environment either
    argv = (record / "argv").read_text()
    assert "mkdir" in argv and "chmod" in argv  # the shims saw the entrypoint's commands
    assert secret not in argv and secret not in "\n".join(args) and secret not in spark_env


@pytest.mark.parametrize("daemon", ["spark-master", "spark-worker"])
def test_spark_daemons_refuse_to_start_without_the_secret(tmp_path, daemon):
    proc, record = run_entrypoint(tmp_path, daemon)
    assert proc.returncode != 0 and "SPARK_AUTH_SECRET" in proc.stderr
    assert not (record / "spark-args").exists()


def test_the_airflow_worker_gets_the_spark_conf_for_its_spark_submit(tmp_path):
    secret = "w0rker-" + uuid.uuid4().hex
    conf_dir = tmp_path / "conf"
    proc, record = run_entrypoint(
        tmp_path, "env", SPARK_AUTH_SECRET=secret, SPARK_CONF_DIR=str(conf_dir)
    )
    assert proc.returncode == 0, proc.stderr
    assert f"SPARK_CONF_DIR={conf_dir}\n" in proc.stdout  # exported to the command, e.g. the worker
    assert "SPARK_AUTH_SECRET" not in proc.stdout and secret not in proc.stdout
    assert (conf_dir / "spark-defaults.conf").read_text() == (
        f"spark.authenticate true\nspark.authenticate.secret {secret}\n"
    )
    assert stat.S_IMODE((conf_dir / "spark-defaults.conf").stat().st_mode) == 0o600
    assert secret not in (record / "argv").read_text()

    # without a secret (e.g. a local run outside compose) nothing is written and commands run as before
    proc, _ = run_entrypoint(tmp_path, "env", SPARK_CONF_DIR=str(tmp_path / "none"))
    assert proc.returncode == 0 and not (tmp_path / "none").exists()
    # a secret a properties file would mangle is refused rather than silently changed
    proc, _ = run_entrypoint(tmp_path, "true", SPARK_AUTH_SECRET="a b\\c")
    assert proc.returncode != 0


# --- finding 3: login ---------------------------------------------------------------------------------


def test_the_api_server_has_an_admin_and_a_viewer_and_the_docs_say_how_to_log_in(monkeypatch):
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    env = env_of("airflow-apiserver")
    for key, value in env.items():
        if key.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", raising=False)
    roles = {u.username: u.role for u in SimpleAuthManager.get_users()}
    assert roles == {"admin": "admin", "viewer": "viewer"}
    passwords_file = SimpleAuthManager.get_generated_password_file()
    assert passwords_file == env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    for name in SERVICES:  # nobody switches the login off
        assert (
            str(env_of(name).get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False"))
            == "False"
        )
    assert env_of("airflow-dag-processor")["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"
    doc = DEPLOYMENT_DOC.read_text()
    assert f"docker compose exec airflow-apiserver cat {passwords_file}" in doc
    assert "airflow dags unpause recsys_nightly" in doc
    assert 'dag_id="recsys_nightly"' in (PROJECT / "dags" / "recsys_nightly.py").read_text()


# --- the image ----------------------------------------------------------------------------------------


def test_image_copies_existing_paths_and_its_entry_points_exist():
    dockerfile = (PROJECT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (PROJECT / source).exists(), f"Dockerfile copies missing {source}"
    for script in (ENTRYPOINT, PG_INIT):
        assert script.stat().st_mode & 0o111, f"{script.name} must be executable"
        subprocess.run(["bash", "-n", str(script)], check=True)
    assert "org.apache.spark.deploy.master.Master" in ENTRYPOINT.read_text()
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
        ["dags", "unpause", "--help"],  # docs/deployment.md
        ["jobs", "check", "--help"],  # the DAG processor's and triggerer's healthchecks
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


# --- finding 2: the database roles, made by the real init script ----------------------------------------


def test_postgres_mounts_the_init_script_and_sets_its_passwords():
    mounts = [str(v) for v in SERVICES["postgres"]["volumes"]]
    init = [m for m in mounts if "/docker-entrypoint-initdb.d/" in m]
    assert init == ["./docker/postgres-init.sh:/docker-entrypoint-initdb.d/10-recsys-roles.sh:ro"]
    assert not (PROJECT / "docker" / "postgres-init.sql").exists()
    env = env_of("postgres")
    for var in ("AIRFLOW_DB_PASSWORD", "RECSYS_WRITER_PASSWORD", "RECSYS_READER_PASSWORD"):
        assert env[var] == "${" + var + ":?set it in .env}"


def password_matches(stored: str, role: str, password: str) -> bool:
    """Whether PostgreSQL's stored verifier (pg_authid.rolpassword) is that of `password`."""
    if stored.startswith("SCRAM-SHA-256$"):
        iterations_salt, keys = stored.split("$")[1:]
        iterations, salt = iterations_salt.split(":")
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == keys.split(":")[0]
    return stored == "md5" + hashlib.md5((password + role).encode()).hexdigest()


@pytest.fixture
def initialised_server(pg_server):
    """docker/postgres-init.sh run by psql on the local server as the postgres image runs it, under
    throwaway database and role names; everything it made is dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    version = subprocess.run([psql, "--version"], capture_output=True, text=True).stdout
    major = re.search(r"\(PostgreSQL\) (\d+)", version)
    if major is None or int(major.group(1)) < 15:
        pytest.skip(f"docker/postgres-init.sh needs psql 15 (\\getenv), found {version.strip()}")
    server = conninfo_to_dict(pg_server)
    tag = uuid.uuid4().hex[:8]
    names = {
        "AIRFLOW_DB": f"t_airflow_{tag}",
        "AIRFLOW_DB_USER": f"t_airflow_{tag}",
        "RECSYS_DB": f"t_recsys_{tag}",
        "RECSYS_WRITER": f"t_recsys_writer_{tag}",
        "RECSYS_READER": f"t_recsys_reader_{tag}",
    }
    passwords = {  # quotes, a backslash and spaces: psql must quote them, not splice them
        "AIRFLOW_DB_PASSWORD": 'air\'flow "pw" ' + tag,
        "RECSYS_WRITER_PASSWORD": "wri'ter\\pw " + tag,
        "RECSYS_READER_PASSWORD": "rea;der' -- pw " + tag,
    }
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": str(server.get("host", "127.0.0.1")),
        "PGPORT": str(server.get("port", 5432)),
        "POSTGRES_USER": str(server.get("user", "postgres")),
        "POSTGRES_DB": str(server.get("dbname", "postgres")),
        **({"PGPASSWORD": str(server["password"])} if server.get("password") else {}),
        **names,
        **passwords,
    }
    try:
        proc = subprocess.run(
            ["bash", str(PG_INIT)], capture_output=True, text=True, timeout=120, env=env
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not any(p in proc.stdout + proc.stderr for p in passwords.values())

        def url(role: str, db: str) -> str:
            return psycopg.conninfo.make_conninfo(pg_server, user=names[role], dbname=names[db])

        yield {"names": names, "passwords": passwords, "url": url}
    finally:
        with psycopg.connect(pg_server, autocommit=True) as con:
            for db in ("RECSYS_DB", "AIRFLOW_DB"):
                con.execute(f'DROP DATABASE IF EXISTS "{names[db]}" WITH (FORCE)')
            for role in ("RECSYS_WRITER", "RECSYS_READER", "AIRFLOW_DB_USER"):
                con.execute(f'DROP ROLE IF EXISTS "{names[role]}"')


def test_postgres_init_makes_least_privilege_roles_the_pipeline_can_publish_with(
    initialised_server, pg_server
):
    import psycopg
    from psycopg import errors

    from recsys_core.publish.postgres_store import PostgresWarehouse
    from tests.recsys_core.publish.test_warehouse import tables

    names, url = initialised_server["names"], initialised_server["url"]
    roles = {names[k]: k for k in ("AIRFLOW_DB_USER", "RECSYS_WRITER", "RECSYS_READER")}
    with psycopg.connect(pg_server) as con:
        rows = con.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
            "rolcanlogin, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
            [list(roles)],
        ).fetchall()
        owner = con.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            [names["AIRFLOW_DB"]],
        ).fetchone()[0]
    assert len(rows) == 3
    passwords = {
        "AIRFLOW_DB_USER": "AIRFLOW_DB_PASSWORD",
        "RECSYS_WRITER": "RECSYS_WRITER_PASSWORD",
        "RECSYS_READER": "RECSYS_READER_PASSWORD",
    }
    for name, *powers, login, stored in rows:
        assert powers == [False] * 5 and login, (name, powers)
        password = initialised_server["passwords"][passwords[roles[name]]]
        assert stored and password_matches(stored, name, password), name
    assert owner == names["AIRFLOW_DB_USER"]

    # the writer does all the pipeline does: create, fill, comment, replace, drop, the latest view
    writer = PostgresWarehouse(url("RECSYS_WRITER", "RECSYS_DB"))
    assert writer.publish("2026-01-01", "r1", tables([1, 2], [10, 11]), "v1").status == "published"
    assert writer.publish("2026-01-02", "r2", tables([1, 2, 3], [10]), "v1").status == "published"
    writer.record_run("2026-01-02", "r2", [{"step": "publish", "status": "success"}])
    # the schema's owner is the writer, and the airflow role cannot even connect to the warehouse
    with psycopg.connect(url("RECSYS_WRITER", "RECSYS_DB"), autocommit=True) as con:
        assert (
            con.execute(
                "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
            ).fetchone()[0]
            == names["RECSYS_WRITER"]
        )
        assert con.execute("SHOW search_path").fetchone()[0] == "public"

    # the reader reads every table, also those made after the init (default privileges), and nothing more
    with psycopg.connect(url("RECSYS_READER", "RECSYS_DB"), autocommit=True) as con:
        assert con.execute("SELECT count(*) FROM recommendations").fetchone()[0] == 5
        assert con.execute("SELECT count(*) FROM recommendations_latest").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM publish_log").fetchone()[0] == 6
        assert con.execute("SELECT count(*) FROM run_report").fetchone()[0] == 1
        with pytest.raises(errors.ReadOnlySqlTransaction):  # read-only by default ...
            con.execute("DELETE FROM recommendations")
        con.execute("SET default_transaction_read_only = off")  # ... and by its privileges
        for statement in (
            "INSERT INTO recommendations SELECT * FROM recommendations LIMIT 1",
            "UPDATE items SET title = 'x'",
            "DELETE FROM publish_log",
            "TRUNCATE run_report",
            "DROP TABLE items",
            "CREATE TABLE analyst_notes (x int)",
            "CREATE TEMP TABLE analyst_scratch (x int)",
            "CREATE SCHEMA analyst",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                con.execute(statement)

    # the metadata database is the airflow role's alone; the warehouse is closed to it
    with psycopg.connect(url("AIRFLOW_DB_USER", "AIRFLOW_DB"), autocommit=True) as con:
        con.execute("CREATE TABLE migration_check (x int)")  # what `airflow db migrate` needs
    for role, db in (
        ("RECSYS_WRITER", "AIRFLOW_DB"),
        ("RECSYS_READER", "AIRFLOW_DB"),
        ("AIRFLOW_DB_USER", "RECSYS_DB"),
    ):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(url(role, db)).close()


def test_the_readme_says_how_to_start_log_in_and_unpause():
    readme = (PROJECT / "README.md").read_text()
    passwords = env_of("airflow-apiserver")["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    for step in (
        "cp .env.example .env",
        "AIRFLOW_UID=$(id -u)",
        "docker compose up -d",
        f"docker compose exec airflow-apiserver cat {passwords}",
        "docker compose exec airflow-apiserver airflow dags unpause recsys_nightly",
    ):
        assert step in readme, step


def test_the_entrypoint_names_a_uid_that_has_no_passwd_entry(tmp_path):
    """AIRFLOW_UID on Linux is the host user's, unknown to the image: Airflow's CLI and Spark's JVM
    look the user's name up and fail without one. Run as such a uid (setpriv, as root here), the
    entrypoint adds an entry for it, group 0, to the group-writable passwd file, and runs the command;
    a known uid adds nothing."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run as another uid")
    import tempfile

    uid = 54321
    # pytest's tmp_path lies under a folder only root may enter: this one any uid can reach
    shared = Path(tempfile.mkdtemp(prefix="recsys-passwd-", dir="/tmp"))
    shared.chmod(0o777)
    passwd = shared / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    passwd.chmod(0o666)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/airflow"}
    env.update(RECSYS_PASSWD_FILE=str(passwd), SPARK_HOME=str(tmp_path))
    ran = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            "--regid=0",
            "--clear-groups",
            "bash",
            str(ENTRYPOINT),
            "id",
            "-u",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert ran.returncode == 0 and ran.stdout.strip() == str(uid), ran.stderr
    assert passwd.read_text().splitlines()[-1] == (
        f"airflow-{uid}:x:{uid}:0:recsys (AIRFLOW_UID):/home/airflow:/usr/sbin/nologin"
    )
    again = subprocess.run(
        ["bash", str(ENTRYPOINT), "true"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and len(passwd.read_text().splitlines()) == 2  # root is known
