#!/usr/bin/env bash
# Runs the given command; `spark-master` and `spark-worker` start Spark's standalone daemons from pyspark.
set -euo pipefail
SPARK_HOME="$(python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
case "${1:-}" in
  spark-master) exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master --host 0.0.0.0 --port 7077 --webui-port 8081 ;;
  spark-worker) exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker "${SPARK_MASTER_URL:?}" ;;
  *) exec "$@" ;;
esac
