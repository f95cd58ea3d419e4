"""The Airflow UI of `recsys ui`, used as a person does in a real (headless) chromium: open the DAG,
press Trigger, read every param with its description on the form, type a ds and a smaller top_n,
press the form's Trigger, and find the run succeed and the warehouse hold top_n rows per user.

It found a real fault: the ds param, a string defaulting to "", made the form mark ds as required and
keep its Trigger button disabled until someone typed a date."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.browser.devtools import browser_page
from tests.integration.airflow_services import Api, free_port
from tests.integration.dag_runs import duckdb_url, table_rows

pytestmark = pytest.mark.integration

DAG = "recsys_nightly"
DS = "2026-01-31"
TOP_N = 5
RUN_SECONDS = 1200

BUTTON = (
    "[...document.querySelectorAll({scope} + ' button')].find(b => b.innerText.trim() === {text})"
)
FORM = (
    "[...document.querySelectorAll('[role=dialog]')].find(d => d.innerText.includes('Trigger Dag'))"
)


def button(text: str, scope: str = "body") -> str:
    return BUTTON.format(scope=repr(scope), text=repr(text))


def type_into(page, name: str, text: str) -> None:
    """Focus the form field `name` and type `text` as a keyboard would (React sees the input)."""
    page.evaluate(f"document.querySelector('[role=dialog] [name={name}]').focus()")
    page.call("Input.insertText", text=text)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`recsys ui` on a free port with a small data set and a fast config; the API and the work dir."""
    from recsys_core.datasets.generate import generate_dataset

    root = tmp_path_factory.mktemp("ui")
    generate_dataset(root / "data", users=120, items=60, interactions=2400, seed=3)
    config = root / "recsys.toml"
    config.write_text("[model]\nepochs = 2\n\n[spark]\nshuffle_partitions = 4\n")
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(root / "data"),
        "RECSYS_WORK_DIR": str(root / "work"),
        "RECSYS_CONFIG": str(config),
    }
    cmd = [sys.executable, "-m", "recsys_cli.main", "ui", "--port", str(port)]
    cmd += ["--airflow-home", str(root / "airflow")]
    log = (root / "ui.log").open("w")
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        api = Api(f"http://127.0.0.1:{port}")
        api.wait(f"/dags/{DAG}", 300)
        yield api, f"http://127.0.0.1:{port}", root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_trigger_form_shows_every_param_and_a_run_it_starts_publishes_top_n(ui, tmp_path):
    api, base, root = ui
    params = api.call("GET", f"/dags/{DAG}/details")["params"]
    with browser_page(tmp_path / "profile", height=1600) as page:
        page.open(f"{base}/dags/{DAG}")
        page.wait_for(f"!!{button('Trigger')}")
        page.evaluate(f"{button('Trigger')}.click()")
        form = page.wait_for(f"{FORM}?.innerText")
        for name, param in params.items():
            assert name in form, name
            assert param["description"] in form, (name, param["description"])
        # with every param at its default the form may be sent (it was not: ds looked required)
        trigger = button("Trigger", "[role=dialog]")
        assert page.evaluate(f"{trigger}.disabled") is False
        type_into(page, "element_ds", DS)
        type_into(page, "element_top_n", str(TOP_N))
        page.wait_for(
            f"document.querySelector('[role=dialog] [name=element_top_n]').value === '{TOP_N}'"
        )
        page.evaluate(f"{trigger}.click()")
        # the form closes once Airflow accepted the run
        page.wait_for(f"!{FORM}", 60)
    runs = api.call("GET", f"/dags/{DAG}/dagRuns")["dag_runs"]
    manual = [run for run in runs if run["run_type"] == "manual"]
    assert (
        len(manual) == 1 and manual[0]["conf"]["top_n"] == TOP_N and manual[0]["conf"]["ds"] == DS
    )
    # the form's "Unpause on trigger" (checked, so that the run is scheduled at all) also lets the
    # scheduler start the latest interval's run: stopped, so the one slot (max_active_runs) is ours
    for run in runs:
        if run["run_type"] != "manual":
            api.call("PATCH", f"/dags/{DAG}/dagRuns/{run['dag_run_id']}", {"state": "failed"})
    deadline = time.time() + RUN_SECONDS
    state = manual[0]["state"]
    while state not in ("success", "failed") and time.time() < deadline:
        time.sleep(5)
        state = api.call("GET", f"/dags/{DAG}/dagRuns/{manual[0]['dag_run_id']}")["state"]
    assert state == "success", (root / "ui.log").read_text()[-3000:]
    per_user = table_rows(
        duckdb_url(root / "work"),
        "SELECT min(n), max(n), count(*) FROM (SELECT count(*) AS n FROM recommendations "
        "WHERE ds = ?::DATE GROUP BY user_id) AS lists",
        [DS],
    )
    assert per_user[0][:2] == (TOP_N, TOP_N) and per_user[0][2] > 100, per_user


def test_recsys_ui_serves_the_dag_on_this_machines_loopback_only(ui):
    """Everyone is admin there (no login): only this machine may reach it."""
    api, base, _ = ui
    assert api.wait("/monitor/health", 60)["metadatabase"]["status"] == "healthy"
    dag = api.call("GET", f"/dags/{DAG}")
    assert dag["dag_id"] == DAG and "nightly" in {t["name"] for t in dag["tags"]}
    port = base.rsplit(":", 1)[1]
    listening = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert f"127.0.0.1:{port}" in listening
    assert all(field.startswith("127.0.0.1:") for field in listening if field.endswith(f":{port}"))
