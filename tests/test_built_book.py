"""Checks of the built HTML book, served on localhost and parsed with BeautifulSoup.

Run after ``jupyter-book build .`` (``make test`` does). Without a build these tests
skip, unless ``METALEARN_REQUIRE_HTML=1`` (set by ``make test``), where they fail.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request

import pytest
from book_files import REPOSITORY, ROOT, load, plotting_cells, served_site, source, toc_files
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
    with served_site(HTML) as url:
        yield url


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


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_every_plotting_cell_has_a_figure_on_the_page(site, name):
    """Expected figures come from the chapter's source (cells that plot), not from the build."""
    cells = page(site, name).select("article div.cell")
    expected = plotting_cells(ROOT / f"{name}.ipynb")
    assert expected, f"{name}: no cell plots; a chapter without a figure is suspicious"
    missing = [i for i, _ in expected if not cells[i].select(".cell_output img")]
    assert not missing, f"{name}: code cells {missing} plot, but the page shows no figure there"
    for image in page(site, name).select("div.cell_output img"):
        if image["src"].startswith("data:"):
            continue
        status, body = fetch(urllib.parse.urljoin(f"{site}/{name}.html", image["src"]))
        assert status == 200 and body, image["src"]


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_no_output_is_an_empty_widget(site, name):
    """A widget view without its kernel shows nothing: the book must show text or a figure."""
    soup = page(site, name)
    views = soup.select('script[type="application/vnd.jupyter.widget-view+json"]')
    assert not views, f"{name}: {len(views)} widget outputs that are empty in a static page"
    for output in soup.select("div.cell_output"):
        assert output.get_text(strip=True) or output.select("img"), (
            f"{name}: an output with neither text nor figure"
        )


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
