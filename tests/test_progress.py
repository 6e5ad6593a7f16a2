"""Progress: a live bar while a loop runs, one readable summary line once it ends."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from metalearn.progress import Progress


def test_terminal_prints_a_summary_with_the_smoothed_metric(capsys):
    with Progress(4, "demo", smooth=2) as bar:
        for loss in (9.0, 9.0, 1.0, 3.0):
            bar.update(loss=loss)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("demo: 4 steps in ")
    assert last.endswith("loss 2"), last  # mean of the last two values, not of all four


def test_disabled_shows_nothing(capsys):
    with Progress(3, "quiet", enabled=False) as bar:
        bar.update(loss=1.0)
    assert capsys.readouterr() == ("", "")
    assert bar.metrics() == {"loss": 1.0}


def test_an_exception_is_named_in_the_summary(capsys):
    with pytest.raises(KeyError), Progress(3, "demo") as bar:
        bar.update()
        raise KeyError("boom")
    assert "demo (stopped by KeyError): 1 steps" in capsys.readouterr().err


@pytest.mark.parametrize("total", [-1, 2.5, True, "3"])
def test_bad_total_is_refused_by_name(total):
    with pytest.raises(ValueError, match="total"):
        Progress(total, "demo")


def test_in_a_kernel_the_stored_output_is_one_summary_line_not_a_widget():
    """What an executed notebook (and so the built book) keeps of a training run."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "from metalearn.progress import Progress\n"
            "with Progress(30, 'demo', min_interval=0.0) as bar:\n"
            "    for _ in range(30):\n"
            "        bar.update(loss=0.5)\n"
        )
    )
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    assert len(outputs) == 1, outputs
    data = outputs[0]["data"]
    assert set(data) == {"text/plain"}, data.keys()
    assert data["text/plain"].startswith("demo: 30 steps in ")
    assert data["text/plain"].endswith(", loss 0.5")
