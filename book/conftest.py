"""The chapters run once in `make test`: under nbval, and the book is built from that run.

With ``--executed-cache DIR``, every chapter whose code cells all pass under nbval is
stored, outputs included, in a jupyter-cache at ``DIR``. ``make test`` then builds the book
with ``METALEARN_EXECUTED_CACHE=DIR`` (see ``_ext/executed_chapters.py``), which takes each
chapter's outputs from there instead of executing it a second time: the pages show the very
execution that the tests checked.

The outputs are assembled from the kernel's messages by nbclient's own handler
(``NotebookClient.process_message``), the code that executes notebooks in a Jupyter Book
build, so updated displays (the progress bars' summaries) and streams end up as a build
would leave them. A chapter with a failed, skipped or deselected cell is not stored.
"""

from __future__ import annotations

import copy
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--executed-cache",
        default=None,
        metavar="DIR",
        help="store each chapter that passes under nbval, with its outputs, in a jupyter-cache",
    )


def pytest_configure(config: pytest.Config) -> None:
    folder = config.getoption("--executed-cache", default=None)
    if folder:
        config.pluginmanager.register(ExecutedChapters(Path(folder)), "executed-chapters")


class _Chapter:
    """One notebook as nbval executes it: its outputs so far and whether every cell passed."""

    def __init__(self, notebook: Any, kernel: Any, language_info: dict[str, Any] | None) -> None:
        from nbclient import NotebookClient

        self.notebook = copy.deepcopy(notebook)
        if language_info is not None:  # nbclient records it so; the page's code lexer
            self.notebook.metadata.language_info = language_info
        for cell in self.notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        self.client = NotebookClient(self.notebook, record_timing=False)
        self.client.reset_execution_trackers()
        # nbclient's stand-in for an Output widget's front end (ipywidgets.interactive) sends
        # the widget's outputs back to the kernel, as a browser would
        self.client.kc = kernel.kc
        self.code_cells = sum(cell.cell_type == "code" for cell in self.notebook.cells)
        self.passed: set[int] = set()
        self.seconds = 0.0


class ExecutedChapters:
    """Records the kernel messages of each chapter cell nbval runs; stores passing chapters."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.chapters: dict[Path, _Chapter] = {}
        self.failed: set[Path] = set()
        self.messages: list[dict[str, Any]] = []
        self.msg_id: str | None = None
        self.language_info: dict[str, Any] | None = None
        self.stored: list[str] = []
        self._undo: list[tuple[type, str, Any]] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        from nbval.kernel import RunningKernel

        recorder = self

        def execute_cell_input(kernel: Any, *args: Any, **kwargs: Any) -> str:
            recorder.msg_id = execute(kernel, *args, **kwargs)
            return recorder.msg_id

        def get_message(kernel: Any, stream: str, timeout: Any = None) -> Any:
            message = receive(kernel, stream, timeout=timeout)
            if stream == "iopub":
                recorder.messages.append(message)
            elif message["msg_type"] == "kernel_info_reply":  # nbval asks when it starts one
                recorder.language_info = message["content"].get("language_info")
            return message

        execute, receive = RunningKernel.execute_cell_input, RunningKernel.get_message
        for name, new in [("execute_cell_input", execute_cell_input), ("get_message", get_message)]:
            self._undo.append((RunningKernel, name, getattr(RunningKernel, name)))
            setattr(RunningKernel, name, new)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for owner, name, original in self._undo:
            setattr(owner, name, original)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        from nbval.plugin import IPyNbCell

        self.messages, self.msg_id = [], None
        yield  # raises if the cell failed: nothing is recorded then
        if not isinstance(item, IPyNbCell):
            return
        chapter = self._chapter(item)
        index = next(i for i, cell in enumerate(item.parent.nb.cells) if cell is item.cell)
        self._replay(chapter, index)
        chapter.passed.add(index)

    def _chapter(self, item: Any) -> _Chapter:
        path = Path(str(item.parent.fspath)).resolve()
        if path not in self.chapters:
            self.chapters[path] = _Chapter(item.parent.nb, item.parent.kernel, self.language_info)
        return self.chapters[path]

    def _replay(self, chapter: _Chapter, index: int) -> None:
        """Turn the cell's iopub messages into its outputs, as a Jupyter Book build would."""
        from nbclient.exceptions import CellExecutionComplete

        cell = chapter.notebook.cells[index]
        chapter.client.clear_before_next_output = False  # as nbclient sets it for each cell
        for message in self.messages:
            if message["parent_header"].get("msg_id") != self.msg_id:
                continue
            try:
                chapter.client.process_message(message, cell, index)
            except CellExecutionComplete:
                break

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = Path(report.fspath).resolve()
        if path.suffix != ".ipynb":
            return
        if report.failed or report.skipped:
            self.failed.add(path)
        elif report.when == "call" and path in self.chapters:
            self.chapters[path].seconds += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn

        cache = get_cache(str(self.folder))
        stored = []
        for path, chapter in sorted(self.chapters.items()):
            if path in self.failed or len(chapter.passed) != chapter.code_cells:
                continue
            chapter.client.set_widgets_metadata()  # widget state, as nbclient stores it
            bundle = CacheBundleIn(
                chapter.notebook, str(path), data={"execution_seconds": chapter.seconds}
            )
            cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
            stored.append(path.name)
        self.stored = stored

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(
            f"chapters stored with their outputs in {self.folder}: {len(self.stored)}"
        )
