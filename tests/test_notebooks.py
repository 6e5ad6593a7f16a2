"""Static checks of every chapter notebook (nbval executes them; these check their shape)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from book_files import (
    COLAB_CELL,
    PLOTS,
    REPOSITORY,
    ROOT,
    load,
    notebooks,
    plotting_cells,
    source,
    tags,
    toc_files,
)
from IPython.core.interactiveshell import InteractiveShell

CHAPTERS = notebooks()
IDS = [path.name for path in CHAPTERS]


def test_the_book_has_chapters_and_the_toc_lists_exactly_them():
    assert CHAPTERS, "book/ holds no notebooks"
    pages = toc_files()
    for page in pages:
        assert any((ROOT / f"{page}{suffix}").exists() for suffix in (".ipynb", ".md")), (
            f"_toc.yml lists missing {page}"
        )
    listed = {page for page in pages}
    for path in CHAPTERS:
        assert f"book/{path.stem}" in listed, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_is_stored_clean_with_a_python3_kernel(path):
    notebook = load(path)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} is committed with outputs"
            assert cell.get("execution_count") is None


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_has_one_title_asserts_and_exercises(path):
    cells = load(path)["cells"]
    markdown = "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
    code = [source(c) for c in cells if c["cell_type"] == "code"]
    assert source(cells[0]).startswith("# "), "the first cell must be the chapter's title"
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)  # a shell comment is no title
    assert len(re.findall(r"^# ", prose, re.M)) == 1, "exactly one top-level title"
    assert any(re.search(r"^\s*assert\b", c, re.M) for c in code), (
        "the chapter asserts none of its claims"
    )
    assert re.search(r"^## Exercises", markdown, re.M), "the chapter ends with exercises"
    assert re.search(r"[\u4e00-\u9fff]", markdown), "key terms get their Chinese names"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_first_code_cell_is_the_colab_install_cell(path):
    code = [source(c) for c in load(path)["cells"] if c["cell_type"] == "code"]
    assert code[0].strip() == COLAB_CELL


def test_the_repository_address_is_recorded_once_and_used_everywhere():
    """_config.yml's repository.url is the one address: the README's Colab link agrees."""
    assert REPOSITORY.count("/") == 1, REPOSITORY
    readme = (ROOT / "README.md").read_text()
    colab = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/book/"
    assert colab in readme, f"README.md does not link Colab to {REPOSITORY}"
    for address in re.findall(r"github(?:\.com)?/([\w.-]+/[\w.-]+)", readme):
        assert address.removesuffix(".git") == REPOSITORY, f"README.md names {address}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_a_chapter_that_plots_selects_the_inline_backend_itself(path):
    """Figures must reach the page whatever MPLBACKEND the caller set (Agg draws nothing)."""
    code = [source(c) for c in load(path)["cells"] if c["cell_type"] == "code"]
    if plotting_cells(path):
        assert code[1].startswith("%matplotlib inline\n"), (
            f"{path.name}: the cell after the Colab cell must start with %matplotlib inline"
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_every_code_line_fits_100_columns(path):
    """ruff's E501 lets a line end in a `# noqa` pragma past the limit; the page does not."""
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code":
            for line in source(cell).splitlines():
                assert len(line) <= 100, f"{path.name} cell {i}: {len(line)} columns: {line}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_live_widgets_are_hidden_from_the_static_page_and_drawn_beside_it(path):
    """A widget is dead in the HTML: its cell hides its output, and a static figure precedes it."""
    cells = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(cells):
        if re.search(r"widgets\.(interact|interactive)\(", source(cell)):
            assert "remove-output" in tags(cell), f"{path.name}: widget cell {i} not tagged"
            assert PLOTS.search(source(cells[i - 1])), (
                f"{path.name}: widget cell {i} has no static figure before it"
            )


class FakePip:
    """Stands in for ``subprocess.run`` and records the pip commands it was asked to run."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        self.monkeypatch = monkeypatch

    def __call__(self, command: list[str], check: bool = False) -> None:
        assert command[:4] == [sys.executable, "-m", "pip", "install"] and check
        self.calls.append(" ".join(command[4:]))
        self.monkeypatch.delitem(sys.modules, "metalearn")  # "installed": importable again


@pytest.fixture
def shell(monkeypatch):
    ipython = InteractiveShell.instance()
    pip = FakePip(monkeypatch)
    monkeypatch.setattr(subprocess, "run", pip)
    yield ipython, pip
    InteractiveShell.clear_instance()


def test_colab_cell_does_nothing_where_metalearn_imports(shell):
    ipython, pip = shell
    result = ipython.run_cell(COLAB_CELL)
    assert result.success, result.error_in_exec
    assert pip.calls == []


def test_colab_cell_installs_from_the_repository_when_metalearn_is_missing(shell, monkeypatch):
    ipython, pip = shell
    monkeypatch.setitem(
        sys.modules, "metalearn", None
    )  # makes `import metalearn` raise ImportError
    result = ipython.run_cell(COLAB_CELL)
    assert result.success, result.error_in_exec
    assert len(pip.calls) == 1
    assert f"git+https://github.com/{REPOSITORY}@main" in pip.calls[0]
    assert "torch" not in pip.calls[0].replace("metalearn-book", ""), (
        "the cell must keep Colab's torch"
    )
