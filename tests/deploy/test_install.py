"""The install is clean and lean: one distribution owns each installed file, every direct dependency
is bounded below its next major version, the image's runtime lock is the full lock without the dev
tools, and the image's build context leaves out the environment, the data and the repository."""

import csv
import importlib.metadata as md
import os
import re
import tomllib
from collections import defaultdict
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.paths import PROJECT

PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())
DEV_TOOLS = {"pytest", "pytest-xdist", "ruff", "mypy", "faiss-cpu"}


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a uv lockfile."""
    found = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", lock.read_text(), re.M)
    return {re.sub(r"\[.*\]", "", name).lower(): version for name, version in found}


def owners_by_file(distributions) -> dict[str, set[str]]:
    """Installed file -> the distributions whose RECORD lists it (bytecode and metadata aside). The
    RECORD is read as it is: fast, and whether or not the file is still there."""
    owners: dict[str, set[str]] = defaultdict(set)
    for dist in distributions:
        name, site = dist.metadata["Name"], str(dist.locate_file(""))
        for row in csv.reader((dist.read_text("RECORD") or "").splitlines()):
            if (
                not row
                or row[0].endswith(".pyc")
                or ".dist-info/" in row[0]
                or row[0].startswith("..")
            ):
                continue
            owners[os.path.normpath(os.path.join(site, row[0]))].add(name)
    return owners


def test_one_distribution_owns_each_installed_file():
    """Two distributions writing the same file (pyspark and pyspark-client both ship pyspark/) leave
    whichever the installer wrote last: the environment would be right only by install order."""
    shared = {f: names for f, names in owners_by_file(md.distributions()).items() if len(names) > 1}
    by_pair: dict[tuple[str, ...], int] = defaultdict(int)
    for names in shared.values():
        by_pair[tuple(sorted(names))] += 1
    assert not by_pair, f"files owned by more than one distribution: {dict(by_pair)}"


def test_the_ownership_check_sees_two_distributions_writing_one_folder(tmp_path):
    """The check above, on two made-up distributions that both ship pkg/__init__.py."""
    site = tmp_path / "site"
    for name in ("full", "subset"):
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"pkg/__init__.py,,\npkg/{name}.py,,\n")
        (site / "pkg").mkdir(exist_ok=True)  # (some importlib_metadata versions skip missing files)
        for file in ("__init__.py", f"{name}.py"):
            (site / "pkg" / file).write_text("")
    dists = list(md.distributions(path=[str(site)]))
    owners = owners_by_file(dists)
    assert owners[str(site / "pkg" / "__init__.py")] == {"full", "subset"}
    assert owners[str(site / "pkg" / "full.py")] == {"full"}


def test_every_direct_dependency_is_bounded_below_its_next_major_version():
    """A major release (duckdb 1 -> 2 crossed silently once) is a change made on purpose."""
    declared = PYPROJECT["project"]["dependencies"] + [
        r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra
    ]
    locked = pins(PROJECT / "requirements.lock")
    for text in declared:
        req = Requirement(text)
        uppers = [Version(s.version) for s in req.specifier if s.operator == "<"]
        assert uppers, f"{text}: no upper bound"
        if req.marker and not req.marker.evaluate(
            {"sys_platform": "linux", "platform_machine": "x86_64"}
        ):
            continue  # not installed by the lock's platform
        version = Version(locked[req.name.lower()])
        assert version in req.specifier, (text, version)
        assert min(uppers) <= Version(f"{version.major + 1}"), (
            f"{text}: the bound lets the next major version past the locked {version} in"
        )


def test_the_runtime_lock_is_the_full_lock_without_the_dev_tools():
    full = pins(PROJECT / "requirements.lock")
    runtime = pins(PROJECT / "requirements-runtime.lock")
    assert DEV_TOOLS <= set(full) and not DEV_TOOLS & set(runtime)
    assert {name: full.get(name) for name in runtime} == runtime, "same versions as the full lock"
    excluded = {
        line.strip()
        for line in (PROJECT / "requirements.exclude").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert excluded == {"pyspark-client"}
    assert not excluded & (set(full) | set(runtime)), "an excluded package is in a lock"
    assert "tensorflow-cpu" in runtime and "tensorflow" not in runtime, "the CPU-only build"


def test_the_image_installs_the_runtime_lock_from_a_context_without_env_data_or_git():
    dockerfile = (PROJECT / "Dockerfile").read_text()
    installs = re.findall(r"uv pip install[^\n]* -r (\S+)", dockerfile)
    assert installs == ["requirements-runtime.lock"], installs
    ignored = {
        line.strip().rstrip("/")
        for line in (PROJECT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "data", ".git", ".airflow", "**/__pycache__"} <= ignored, ignored
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert source.split("/")[0] not in ignored, f"the image copies {source}, which is ignored"


def test_the_spark_connect_client_imports_from_the_one_pyspark():
    """What pyspark-client brought besides its files: Spark Connect's dependencies (the connect extra).
    Great Expectations imports pyspark.sql.connect, which, where they are missing, ends a process whose
    __main__ has no file (`python -c`, a pytest-xdist worker) with exit code 0 and nothing done."""
    import subprocess
    import sys

    probe = "import pyspark.sql.connect.dataframe, great_expectations; print('imported')"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert proc.stdout.strip().splitlines()[-1:] == ["imported"], proc.stderr[-2000:]
