"""``book/conftest.py``: a chapter run under nbval is stored with the outputs a build would give.

A small notebook (streams, an updated display as the progress bars leave, an execute result, an
ipywidgets Output) runs under nbval with ``--executed-cache``; the stored notebook must match
the same notebook executed by nbclient, as a Jupyter Book build executes it. A notebook with a
failing cell must not be stored.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

CELLS = [
    "print('one'); print('two')",
    "from IPython.display import display\n"
    "handle = display('live 0/2', display_id=True)\n"
    "handle.update('live 1/2')\n"
    "handle.update('done: 2 steps')",
    "import ipywidgets as widgets\n"
    "out = widgets.Output()\n"
    "with out:\n"
    "    print('inside the widget')\n"
    "out",
    "6 * 7",
]


def _notebook(cells: list[str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_markdown_cell("# A chapter")] + [
        nbformat.v4.new_code_cell(source) for source in cells
    ]
    return notebook


def _run_nbval(folder: Path, notebook: nbformat.NotebookNode) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "book" / "conftest.py", folder / "conftest.py")
    nbformat.write(notebook, folder / "chapter.ipynb")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax"]
        + ["--executed-cache", str(folder / "cache"), "--rootdir", str(folder), "chapter.ipynb"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _outputs(notebook: nbformat.NotebookNode) -> list[list[dict]]:
    """Each code cell's outputs, consecutive streams merged (as the book renders them)."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged: list[dict] = []
        for output in cell.outputs:
            output = {k: v for k, v in output.items() if k not in ("metadata", "execution_count")}
            if output.get("data"):  # widget model ids are random
                output["data"] = {k: v for k, v in output["data"].items() if "widget" not in k}
            if merged and output["output_type"] == merged[-1]["output_type"] == "stream":
                merged[-1] = {**merged[-1], "text": merged[-1]["text"] + output["text"]}
            else:
                merged.append(output)
        cells.append(merged)
    return cells


def _widget_outputs(notebook: nbformat.NotebookNode) -> list:
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [s["state"]["outputs"] for s in state.values() if s["model_name"] == "OutputModel"]


def test_stored_chapter_matches_an_nbclient_execution(tmp_path):
    from jupyter_cache import get_cache
    from nbclient import NotebookClient

    notebook = _notebook(CELLS)
    result = _run_nbval(tmp_path, notebook)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "stored with their outputs" in result.stdout and ": 1" in result.stdout

    cache = get_cache(str(tmp_path / "cache"))
    stored = cache.get_cache_bundle(cache.match_cache_notebook(notebook).pk).nb
    executed = _notebook(CELLS)
    NotebookClient(executed, resources={"metadata": {"path": str(tmp_path)}}).execute()

    assert _outputs(stored) == _outputs(executed)
    assert _outputs(stored)[1] == [
        {"output_type": "display_data", "data": {"text/plain": "'done: 2 steps'"}}
    ]  # the last update, not the first display
    assert _widget_outputs(stored) == _widget_outputs(executed) != []
    assert stored.metadata.language_info.name == "python"


def test_chapter_with_a_failing_cell_is_not_stored(tmp_path):
    from jupyter_cache import get_cache

    notebook = _notebook(["x = 1", "raise ValueError('a failing chapter')", "x + 1"])
    result = _run_nbval(tmp_path, notebook)
    assert result.returncode != 0
    with pytest.raises(KeyError):
        get_cache(str(tmp_path / "cache")).match_cache_notebook(notebook)
