"""What the jobs may import: the library, never each other; and the steps that are not Spark jobs do
not load Spark to run."""

import ast
import subprocess
import sys

from jobs import SPARK_STEPS, TASKS
from tests.paths import PROJECT


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_job_imports_another_job():
    for task in TASKS:
        imports = imported_modules(PROJECT / "jobs" / f"{task}.py")
        assert not {m for m in imports if m.startswith("jobs.")}, (task, imports)


def test_the_library_imports_no_job_and_no_airflow():
    for path in (PROJECT / "recsys_core").rglob("*.py"):
        imports = imported_modules(path)
        bad = {m for m in imports if m == "jobs" or m.startswith(("jobs.", "airflow"))}
        assert not bad, (path, bad)


def test_steps_that_are_not_spark_jobs_run_without_loading_spark():
    steps = [t for t in TASKS if t not in SPARK_STEPS]
    probe = "import importlib, sys\n"
    probe += "".join(f"importlib.import_module('jobs.{s}')\n" for s in steps)
    probe += "print(sorted(m for m in sys.modules if m == 'pyspark' or m.startswith('pyspark.')))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
