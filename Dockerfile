# The project image: Python 3.11, Java 17 for Spark, the locked runtime dependencies (requirements-runtime.lock:
# no dev tools), the project itself.
# Every Airflow component, the Celery workers and the Spark master/worker run from it.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/recsys/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/recsys
COPY requirements-runtime.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv pip install --system --no-cache -r requirements-runtime.lock
COPY recsys_core ./recsys_core
COPY recsys_cli ./recsys_cli
COPY recsys_airflow ./recsys_airflow
COPY jobs ./jobs
COPY dags ./dags
COPY schemas ./schemas
COPY config ./config
COPY docker/entrypoint.sh /usr/local/bin/recsys-entrypoint
# the user `airflow` (uid 50000) of group 0; compose may run it as another uid (AIRFLOW_UID) of group 0,
# so every folder a process writes is group 0's and group-writable, and HOME does not depend on the uid
RUN uv pip install --system --no-cache --no-deps -e . \
 && useradd --create-home --uid 50000 --gid 0 airflow \
 && mkdir -p /opt/airflow/logs /data \
 && chown -R airflow:0 /opt/airflow /data /home/airflow \
 && chmod -R g=u /opt/airflow /data /home/airflow \
 && chmod g+w /etc/passwd
# HOME for any uid; the entrypoint gives a uid without a passwd entry one (Airflow and Spark need a name)
ENV HOME=/home/airflow

USER airflow
ENTRYPOINT ["tini", "--", "recsys-entrypoint"]
CMD ["airflow", "version"]
