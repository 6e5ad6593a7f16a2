"""The built book as a reader sees it: every page opened in headless Chromium.

Each page of the table of contents is served on localhost and opened in Debian's
Chromium through Playwright. MathJax is served from a local copy (the PyPI package
``django-static-mathjax``), every other request to the internet is refused, so the
test runs offline and sees what a reader sees once the page has settled. Checked
per page: every image loaded (non-zero natural size), no uncaught JavaScript error,
MathJax ran and left no raw ``$$`` or ``\\(`` in the visible text, every cell that
plots shows a figure, no code block scrolls sideways in a 1280-pixel window, and a
full-page screenshot is saved under
``_build/screenshots/`` for a person to look at.

Without Chromium the test skips with the reason, unless ``METALEARN_REQUIRE_BROWSER=1``
(set by ``make test``), where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from book_files import ROOT, load, plotting_cells, served_site, toc_files

HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("METALEARN_REQUIRE_BROWSER") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRED:
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)


if not (HTML / "index.html").exists():
    _skip_or_fail(f"{HTML} has no built book: run `make book` first")
if CHROMIUM is None:
    _skip_or_fail("Chromium is not installed: `apt-get install chromium` (make test does)")
try:
    import mathjax
    from playwright.sync_api import Route, sync_playwright
except ImportError as error:
    _skip_or_fail(f"{error.name} is missing: pip install -r requirements.txt")

MATHJAX = Path(mathjax.__file__).parent / "static" / "mathjax"
# Chromium flags for a closed network: no background requests that would be refused.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What is left visible when MathJax did not run: TeX delimiters.
RAW_MATH = ["$$", "\\(", "\\)", "\\[", "\\begin{"]
VISIBLE_TEXT = """() => {
    const body = document.querySelector("article") || document.body;
    const copy = body.cloneNode(true);
    copy.querySelectorAll("pre, code, script, style, mjx-container, .highlight")
        .forEach(node => node.remove());
    return copy.innerText;
}"""
IMAGES = """() => Array.from(document.querySelectorAll("article img")).map(img => ({
    src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth,
}))"""
WIDE_CODE = """() => Array.from(document.querySelectorAll("article div.highlight pre"))
    .filter(pre => !pre.closest(".cell_output") && pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => pre.innerText.split("\\n").reduce((a, b) => (b.length > a.length ? b : a), ""))"""
FIGURES_PER_CELL = """() => Array.from(document.querySelectorAll("article div.cell")).map(
    cell => cell.querySelectorAll(".cell_output img").length)"""


@pytest.fixture(scope="module")
def site():
    with served_site(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _route(site: str):
    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(site):
            route.continue_()
        elif "/mathjax@3/es5/" in url:
            local = MATHJAX / "es5" / url.split("/mathjax@3/es5/", 1)[1].split("?")[0]
            if local.is_file():
                route.fulfill(path=str(local))
            else:
                route.fulfill(status=404)
        else:
            route.abort()  # offline: the book must not need anything else from the internet

    return handle


@pytest.fixture(scope="module")
def pages(site, browser):
    """Open every page once; return what each shows, keyed by its name."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shown = {}
    for name in toc_files():
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.route("**/*", _route(site))
        page.goto(f"{site}/{name}.html", wait_until="load", timeout=60_000)
        page.wait_for_load_state("networkidle", timeout=60_000)
        mathjax_ran = page.evaluate(
            "async () => { if (!window.MathJax || !MathJax.startup) return false;"
            " await MathJax.startup.promise; return true; }"
        )
        page.wait_for_timeout(300)
        shown[name] = {
            "errors": errors,
            "mathjax": mathjax_ran,
            "text": page.evaluate(VISIBLE_TEXT),
            "images": page.evaluate(IMAGES),
            "figures_per_cell": page.evaluate(FIGURES_PER_CELL),
            "math_nodes": page.locator("mjx-container").count(),
            "wide_code": page.evaluate(WIDE_CODE),
        }
        page.screenshot(path=str(SCREENSHOTS / f"{Path(name).name}.png"), full_page=True)
        page.close()
    return shown


PAGES = toc_files()
NOTEBOOK_PAGES = [name for name in PAGES if (ROOT / f"{name}.ipynb").exists()]


@pytest.mark.parametrize("name", PAGES)
def test_page_runs_no_javascript_error(pages, name):
    assert pages[name]["errors"] == [], f"{name}: {pages[name]['errors']}"


@pytest.mark.parametrize("name", PAGES)
def test_every_image_loaded(pages, name):
    broken = [image["src"] for image in pages[name]["images"] if image["width"] == 0]
    assert not broken, f"{name}: images that did not load: {broken}"


@pytest.mark.parametrize("name", PAGES)
def test_math_is_typeset(pages, name):
    shown = pages[name]
    left = [marker for marker in RAW_MATH if marker in shown["text"]]
    assert not left, f"{name}: raw TeX {left} is visible: MathJax did not typeset it"
    markdown = (ROOT / f"{name}.md").read_text() if (ROOT / f"{name}.md").exists() else ""
    if (ROOT / f"{name}.ipynb").exists():
        markdown = "\n".join(
            "".join(cell["source"])
            for cell in load(ROOT / f"{name}.ipynb")["cells"]
            if cell["cell_type"] == "markdown"
        )
    if "$" in markdown:
        assert shown["mathjax"], f"{name}: the page has math but MathJax did not start"
        assert shown["math_nodes"] > 0, f"{name}: MathJax typeset no formula"


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_no_code_block_scrolls_sideways(pages, name):
    """At a 1280-pixel-wide window every code cell and code block fits: each line shows whole."""
    assert pages[name]["wide_code"] == [], (
        f"{name}: wider than its block: {pages[name]['wide_code']}"
    )


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_every_plotting_cell_shows_its_figure(pages, name):
    """The expectation comes from the chapter's source, not from what the build produced."""
    expected = plotting_cells(ROOT / f"{name}.ipynb")
    shown = pages[name]["figures_per_cell"]
    missing = [index for index, cell in expected if shown[index] == 0]
    assert not missing, (
        f"{name}: code cells {missing} (counted among the page's code cells) plot, "
        "but the page shows no figure for them"
    )
