"""The run report as a browser shows it: every image loads, every link resolves, nothing overflows
the page; in a copy of the report's folder moved elsewhere, as a reader may receive it."""

import html
import json
import os
import re
import shutil
from urllib.parse import unquote, urlparse

import pytest

from recsys_core.io import layout
from recsys_core.model.gate import METRIC
from tests.browser.chromium import dump_dom
from tests.jobs.test_report_job import DS, make_lake, run

# appended to a copy of the page: measures it once loaded, then writes what it found into the DOM
CHECK = """<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const found = {
    width: width,
    scrollWidth: document.documentElement.scrollWidth,
    images: [...document.images].map(i => ({
      alt: i.alt, loaded: i.complete && i.naturalWidth > 0, right: i.getBoundingClientRect().right,
    })),
    links: [...document.links].map(a => a.href),
  };
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def looked_at(page, profile, width, extra=""):
    """What the browser found on `page` (with `extra` HTML added to its body) at this window width."""
    checked = page.with_name("checked.html")
    checked.write_text(page.read_text().replace("</body>", f"{extra}{CHECK}</body>"))
    dom = dump_dom(checked.as_uri(), profile, width, 900)
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory):
    """The report job's page for DS after two earlier nights, its folder copied somewhere else."""
    work = tmp_path_factory.mktemp("work")
    lake = make_lake(work)
    for day, published in (("2026-01-29", 900), ("2026-01-30", 950), (DS, 1000)):
        for step, seconds in (("train_towers", 40.0), ("publish", 3.0)):
            record = {"step": step, "status": "success", "seconds": seconds}
            record["rows_out"] = {"recommendations": published} if step == "publish" else {}
            lake.write_json(record, layout.STEP_RECORDS, day, f"{step}.json")
        gate = {
            "ds": day,
            "blessed": True,
            "reason": "better <by> far",
            "candidate_version": f"m-{day}",
            "serving_version": f"m-{day}",
            "candidate_metrics": {METRIC: 0.2},
            "blessed_metrics": {METRIC: 0.19},
        }
        lake.write_json(gate, layout.MODEL_EVALUATION, day, layout.EVALUATION_FILE)
    code, _, page = run(work)
    assert code == 0
    return shutil.copytree(page.parent, tmp_path_factory.mktemp("received") / "report")


@pytest.mark.parametrize("width", [1280, 800])
def test_every_image_loads_every_link_resolves_and_nothing_overflows(
    report_folder, tmp_path, width
):
    found = looked_at(report_folder / layout.REPORT_FILE, tmp_path / "profile", width)
    alts = [image["alt"] for image in found["images"]]
    assert len(alts) == 5 and "step times across nights" in alts, alts
    assert all(image["loaded"] for image in found["images"]), found["images"]
    assert found["scrollWidth"] <= found["width"] == width, found
    assert all(image["right"] <= width for image in found["images"]), found["images"]
    assert len(found["links"]) == 2
    for link in found["links"]:
        url = urlparse(link)
        assert url.scheme == "file", link
        target = unquote(url.path)
        assert target.startswith(str(report_folder)) and os.path.exists(target), link


def test_the_check_sees_a_broken_image_a_dead_link_and_a_page_too_wide(report_folder, tmp_path):
    """The same check on the page with a missing image, a link to nowhere and a 3000 px block added:
    it reports each, so the test above could fail."""
    broken = '<img alt="missing" src="missing.png"><a href="gone.html">gone</a>'
    found = looked_at(
        report_folder / layout.REPORT_FILE,
        tmp_path / "profile",
        1280,
        extra=f'{broken}<div style="width:3000px">wide</div>',
    )
    assert [i["loaded"] for i in found["images"] if i["alt"] == "missing"] == [False]
    assert found["scrollWidth"] > found["width"]
    dead = [link for link in found["links"] if link.endswith("gone.html")]
    assert dead and not os.path.exists(unquote(urlparse(dead[0]).path))
