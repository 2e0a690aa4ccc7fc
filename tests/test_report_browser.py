"""The exported HTML report in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import launch_chromium, require_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "ci-artifacts"


@pytest.mark.slow
def test_report_pages_have_figures_numbers_and_no_broken_links(tiny) -> None:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    root, _, _ = tiny
    with sync_playwright() as p:
        browser = launch_chromium(p, executable)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto((root / "index.html").as_uri())
        cells = page.locator("table.summary td").all_inner_texts()
        assert sum(bool(re.fullmatch(r"0\.\d{3}( \[0\.\d{3}, 0\.\d{3}\])?( [▲†])?", c)) for c in cells) >= 6, cells
        assert page.locator("table.summary").count() == 2  # mlqa-r and tatoeba
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-index.png"), full_page=True)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        assert len(hrefs) == 8  # seven stage pages and params.yaml
        for href in hrefs:
            target = Path(href.removeprefix("file://"))
            assert target.is_file(), f"broken link {href}"
            if target.suffix == ".html":
                response = page.goto(href)
                assert response is not None and response.ok, href
                assert "Traceback" not in page.content()
        page.goto((root / "report" / "04_report.html").as_uri())
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({w: e.naturalWidth, h: e.naturalHeight, n: e.src.length}))"
        )
        assert len(images) >= 5  # per-pair small multiples, deltas, bias
        assert all(i["w"] > 100 and i["h"] > 100 and i["n"] > 2000 for i in images), images
        assert page.locator(".jp-CodeCell .jp-InputArea").count() == 0  # the code stays in the notebook
        assert page.locator(".jp-CodeCell.jp-mod-noInput").count() >= 8
        page.click('a[href="#Summary"]')  # the table of contents leads to its section
        assert page.evaluate("location.hash") == "#Summary"
        tables = page.locator("table.dataframe").all_inner_texts()
        assert any(re.search(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", t) for t in tables)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
        browser.close()
