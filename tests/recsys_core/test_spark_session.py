"""A job launched by spark-submit (the DAG) keeps spark-submit's name, master and driver memory instead
of the config's (which jobs started by hand use: tests/jobs/test_spark_retry.py runs on local[2,3])."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

SCRIPT = """
from recsys_core.config import SparkConfig
from recsys_core.spark import launched_by_spark_submit, spark_session

spark = spark_session(SparkConfig(master="local[2]", driver_memory="1g", shuffle_partitions=3), "by-hand", 60)
sc = spark.sparkContext
print("RESULT", launched_by_spark_submit(), sc.master, sc.getConf().get("spark.driver.memory"), sc.appName,
      spark.conf.get("spark.sql.shuffle.partitions"))
"""


def result(cmd, tmp_path):
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return lines[0].split()[1:]


def test_spark_submit_settings_win_over_the_config(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    submit = str(Path(sys.executable).with_name("spark-submit"))
    submitted = result(
        [
            submit,
            "--master",
            "local[1]",
            "--driver-memory",
            "768m",
            "--name",
            "from-submit",
            str(script),
        ],
        tmp_path,
    )
    assert submitted == [
        "True",
        "local[1]",
        "768m",
        "from-submit",
        "3",
    ]  # shuffle partitions: the config's
