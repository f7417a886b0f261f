"""The data quality report: after a gated Dagster run, GX Data Docs exist under the data directory,
the gate's check metadata links them, quality.json lists every validated suite, and the pages
render in headless Chromium offline: styled, the index listing every validation run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, SKIP_WITHOUT_CHROMIUM
from PIL import Image

from orchestration.definitions import defs
from validation.context import build_data_docs, docs_index_path, unpublished_results
from validation.gate import run_gate
from validation.offline_docs import unvendored_urls
from watchlogs.partitioned import read_watch_logs

TINY = {"n_users": 20, "n_items": 50, "n_events": 400, "n_days": 7, "seed": 5}


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    previous = os.environ["ASFT_DATA_DIR"]
    root = tmp_path_factory.mktemp("docs")
    os.environ["ASFT_DATA_DIR"] = str(root)
    keys = [dg.AssetKey("raw_watch_logs"), dg.AssetKey("data_quality_report")]
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("main_job").execute_in_process(
            run_config={"ops": {"raw_watch_logs": {"config": TINY}}},
            instance=instance,
            asset_selection=keys,
        )
    yield root, result
    os.environ["ASFT_DATA_DIR"] = previous


def test_data_docs_are_built_after_a_gated_run_and_linked_from_the_check(gated_run):
    root, result = gated_run
    assert result.success
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "gx_raw_contract"
    ]
    assert check.passed
    index = root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert check.metadata["data_docs"].value == str(index)
    assert index.exists()
    html = index.read_text()
    assert "raw_watch_logs" in html
    pages = list((index.parent / "validations" / "raw_watch_logs").rglob("*.html"))
    assert pages

    quality = json.loads((root / "reports" / "quality.json").read_text())
    assert quality["suites"]["raw_watch_logs"]["passed"] is True
    assert quality["suites"]["raw_watch_logs"]["expectations"] > 0
    assert quality["data_docs"] == str(index)


def test_a_rebuild_renders_only_the_results_without_a_page(gated_run, tmp_path):
    """A stored result never changes, so its page is rendered once: the next build publishes a
    new validation, leaves every earlier page as it was, and the index names the new one."""
    root = shutil.copytree(gated_run[0], tmp_path / "data")
    site = docs_index_path(root).parent
    before = {p: p.stat().st_mtime_ns for p in (site / "validations").rglob("*.html")}
    assert before and unpublished_results(root) == []

    events = read_watch_logs(root / "raw" / "watch_logs")
    assert run_gate("raw_watch_logs", events, root=root, update_docs=False).success
    (new,) = unpublished_results(root)
    assert build_data_docs(root) == site / "index.html"

    assert unpublished_results(root) == []
    after = {p: p.stat().st_mtime_ns for p in (site / "validations").rglob("*.html")}
    (added,) = set(after) - set(before)
    assert added.relative_to(site / "validations").parts[:-1] == new.to_tuple()[:-1]
    assert {p: after[p] for p in before} == before  # not rendered again
    assert added.relative_to(site).as_posix() in (site / "index.html").read_text()
    assert unvendored_urls(site) == set()  # the new page and the index load nothing remote


def _screenshot(page: Path, png: Path) -> None:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                *CHROMIUM_ARGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                "--window-size=1280,900",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _grey(png: Path) -> np.ndarray:
    return np.asarray(Image.open(png).convert("L"), dtype=np.float64)


@pytest.mark.skipif(
    SKIP_WITHOUT_CHROMIUM,
    reason="Debian's chromium is not installed (CI installs it and must run this test)",
)
def test_data_docs_render_in_headless_chromium(gated_run, tmp_path):
    """The index and the raw gate's validation page render (a real screenshot, checked for
    content)."""
    root, _ = gated_run
    quality = json.loads((root / "reports" / "quality.json").read_text())
    page = Path(quality["suites"]["raw_watch_logs"]["data_docs_page"])
    assert page.is_file()
    for name, html in (("index", Path(quality["data_docs"])), ("validation", page)):
        png = tmp_path / f"{name}.png"
        _screenshot(html, png)
        image = _grey(png)
        assert image.shape == (900, 1280)
        # Rendered text: many grey levels and contrast; a blank or error page is flat.
        assert image.std() > 10 and len(np.unique(image)) > 50, name
    text = (image < 128).mean()  # the validation page: headings, tables of expectations
    assert text > 0.01


def test_data_docs_load_nothing_from_the_network(gated_run):
    root, _ = gated_run
    site = Path(json.loads((root / "reports" / "quality.json").read_text())["data_docs"]).parent
    assert unvendored_urls(site) == set()
    assert (site / "static" / "vendor" / "code.jquery.com" / "jquery-3.7.1.min.js").is_file()


@pytest.mark.skipif(
    SKIP_WITHOUT_CHROMIUM,
    reason="Debian's chromium is not installed (CI installs it and must run this test)",
)
def test_data_docs_index_is_styled_and_lists_every_validation_offline(gated_run):
    """With every request off this machine refused, the index is styled by Bootstrap (a computed
    style the stylesheet sets, not the browser default) and its JavaScript lists one row per
    stored validation run."""
    from playwright.sync_api import sync_playwright

    root, _ = gated_run
    index = Path(json.loads((root / "reports" / "quality.json").read_text())["data_docs"])
    runs = list((index.parent / "validations").rglob("*.html"))
    assert runs
    refused: list[str] = []

    def offline(route):
        if route.request.url.startswith("file://"):
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", offline)
            page.goto(index.as_uri())
            results = "#Validation-Results table tbody tr"  # the tab listing validation runs
            page.wait_for_selector(f"{results} td", state="attached", timeout=30_000)
            font = page.evaluate("getComputedStyle(document.body).fontFamily")
            rows = page.locator(results).count()
            brand = page.evaluate(
                "getComputedStyle(document.querySelector('nav') || document.body).display"
            )
        finally:
            browser.close()
    assert "-apple-system" in font or "Segoe UI" in font, font  # Bootstrap's font stack
    assert brand == "flex"  # Bootstrap's .navbar is a flexbox; unstyled, a nav is a block
    assert rows == len(runs), (rows, len(runs))
    assert refused == []
