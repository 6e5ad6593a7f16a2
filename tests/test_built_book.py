"""Checks of the built HTML book, served on localhost and parsed with BeautifulSoup.

Run after ``jupyter-book build .`` (``make test`` does). Without a build these tests
skip, unless ``METALEARN_REQUIRE_HTML=1`` (set by ``make test``), where they fail.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import urllib.parse
import urllib.request

import pytest
from book_files import REPOSITORY, ROOT, load, source, toc_files
from bs4 import BeautifulSoup

HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute"
PAGES = toc_files()

if not (HTML / "index.html").exists():
    if os.environ.get("METALEARN_REQUIRE_HTML") == "1":
        raise RuntimeError(
            f"{HTML} has no built book: run `jupyter-book build .` (make book) first"
        )
    pytest.skip("the book is not built (make book)", allow_module_level=True)


@pytest.fixture(scope="module")
def site():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def page(site: str, name: str) -> BeautifulSoup:
    status, body = fetch(f"{site}/{name}.html")
    assert status == 200
    return BeautifulSoup(body, "html.parser")


@pytest.mark.parametrize("name", PAGES)
def test_every_toc_page_is_served(site, name):
    soup = page(site, name)
    assert soup.find("article") is not None, f"{name}.html has no article body"


@pytest.mark.parametrize("name", PAGES)
def test_no_page_shows_an_error(site, name):
    soup = page(site, name)
    assert "Traceback (most recent call last)" not in soup.get_text()
    assert not soup.select("div.output.traceback"), f"{name} shows an error output"
    for block in soup.select("div.output.stderr"):
        assert "Error" not in block.get_text(), f"{name}: {block.get_text()[:300]}"


NOTEBOOK_PAGES = [name for name in PAGES if (ROOT / f"{name}.ipynb").exists()]


def executed_images(name: str) -> int:
    """How many figures the executed notebook produced."""
    executed = EXECUTED / f"{name}.ipynb"
    assert executed.exists(), f"{executed} missing: the build did not execute {name}"
    return sum(
        "image/png" in output.get("data", {}) or "image/svg+xml" in output.get("data", {})
        for cell in load(executed)["cells"]
        for output in cell.get("outputs", [])
    )


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_figures_made_by_the_notebook_are_on_the_page(site, name):
    expected = executed_images(name)
    images = page(site, name).select("div.cell_output img")
    assert len(images) >= expected, (
        f"{name}: the notebook made {expected} figures, the page shows {len(images)}"
    )
    for image in images:
        if image["src"].startswith("data:"):
            continue
        status, body = fetch(urllib.parse.urljoin(f"{site}/{name}.html", image["src"]))
        assert status == 200 and body, image["src"]


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_math_is_rendered_as_mathjax_not_left_as_markup(site, name):
    markdown = "\n".join(
        source(c) for c in load(ROOT / f"{name}.ipynb")["cells"] if c["cell_type"] == "markdown"
    )
    soup = page(site, name)
    if "$" in markdown:
        assert soup.select(".math"), f"{name}: source has $-math but the page has no rendered math"
        assert any(
            "mathjax" in (script.get("src") or "").lower() for script in soup.find_all("script")
        )
    for hidden in soup.select("pre, code, script, style, .math"):
        hidden.decompose()
    assert "$$" not in soup.get_text(), f"{name}: raw $$ left on the page"


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_colab_button_opens_this_notebook_on_main(site, name):
    expected = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/{name}.ipynb"
    links = [a.get("href") for a in page(site, name).find_all("a")]
    assert expected in links, f"{name}: no Colab link to {expected}"
