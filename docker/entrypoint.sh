#!/usr/bin/env bash
# The image's entry point: prepares Spark's configuration, then runs the given command.
# `spark-master` and `spark-worker` start Spark's standalone daemons from pyspark; anything else
# (airflow ..., python ..., true) is run as given.
#
# Spark RPC authentication: when SPARK_AUTH_SECRET is set, `spark.authenticate true` and the secret are
# written to $SPARK_CONF_DIR/spark-defaults.conf (mode 600, SPARK_CONF_DIR exported, default
# $HOME/spark-conf), which the master, the worker and spark-submit read. The secret never goes on a
# command line (a -D option or --conf is visible in `ps` to every user of the host) and is removed from
# the environment of the command. The Spark daemons refuse to start without it.
set -euo pipefail

write_spark_conf() {
  [ -n "${SPARK_AUTH_SECRET:-}" ] || return 0
  case "$SPARK_AUTH_SECRET" in # a properties file: a backslash is an escape, whitespace a separator
    *[[:space:]\\]*) echo "SPARK_AUTH_SECRET must not contain whitespace or backslashes" >&2; return 1 ;;
  esac
  SPARK_CONF_DIR="${SPARK_CONF_DIR:-${HOME:?}/spark-conf}"
  export SPARK_CONF_DIR
  (
    umask 077
    mkdir -p "$SPARK_CONF_DIR"
    # printf is a shell builtin: no process is started with the secret among its arguments
    printf 'spark.authenticate true\nspark.authenticate.secret %s\n' "$SPARK_AUTH_SECRET" \
      >"$SPARK_CONF_DIR/spark-defaults.conf"
    chmod 600 "$SPARK_CONF_DIR/spark-defaults.conf"
  )
  unset SPARK_AUTH_SECRET
}

# Compose runs the containers as AIRFLOW_UID (group 0), which has no entry in the image's /etc/passwd
# unless it is 50000: Airflow's CLI and Spark's JVM both look their user's name up and fail without
# one. /etc/passwd is group 0's and group-writable in the image, so an entry is added for this uid.
add_passwd_entry() {
  local passwd="${RECSYS_PASSWD_FILE:-/etc/passwd}"
  id -un >/dev/null 2>&1 && return 0
  [ -w "$passwd" ] || { echo "uid $(id -u) has no passwd entry and $passwd is not writable" >&2; return 1; }
  printf 'airflow-%s:x:%s:0:recsys (AIRFLOW_UID):%s:/usr/sbin/nologin\n' "$(id -u)" "$(id -u)" "${HOME:-/home/airflow}" >>"$passwd"
}

case "${1:-}" in
  spark-master | spark-worker)
    : "${SPARK_AUTH_SECRET:?must be set: the Spark daemons do not run without authentication}"
    ;;
esac
add_passwd_entry
write_spark_conf

if [ -z "${SPARK_HOME:-}" ]; then
  SPARK_HOME="$(python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')"
fi
export SPARK_HOME

case "${1:-}" in
  spark-master) exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master --host 0.0.0.0 --port 7077 --webui-port 8081 ;;
  spark-worker) exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker "${SPARK_MASTER_URL:?}" ;;
  *) exec "$@" ;;
esac
