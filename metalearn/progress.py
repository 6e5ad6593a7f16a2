"""Progress of a long loop: live while it runs, one readable line when it ends.

In a Jupyter or Colab kernel the bar is a display that is updated in place
(``display(..., display_id=True)``); when the loop ends the display is replaced
by a one-line summary, so an executed notebook, and the book built from it,
keeps a record such as ``MAML: 2000 steps in 41.3 s, loss 0.412``
instead of an empty widget. In a terminal the bar is a tqdm line on stderr,
followed by the same summary.

    with Progress(steps, "meta-training") as bar:
        for step in range(steps):
            ...
            bar.update(loss=loss.item())
"""

from __future__ import annotations

import html
import math
import sys
import time
from collections import deque
from types import TracebackType
from typing import Any


def _in_kernel() -> bool:
    """True inside a Jupyter/Colab kernel, where displays can be updated in place."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = shell.get_ipython()  # type: ignore[attr-defined]
    return ipython is not None and hasattr(ipython, "kernel")


class _Text:
    """A display object with plain-text (and optionally HTML) representations."""

    def __init__(self, text: str, html_text: str | None = None) -> None:
        self.text, self.html_text = text, html_text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str | None:
        return self.html_text


class Progress:
    """A progress bar over ``total`` steps that ends as a one-line summary.

    Args:
        total: number of steps (``update`` calls) expected.
        desc: what runs, e.g. ``"MAML meta-training"``; starts the summary line.
        unit: what one step is called in the summary (``"steps"``, ``"assays"``).
        enabled: ``False`` shows nothing and prints no summary.
        smooth: the reported value of each metric is its mean over the last ``smooth`` updates.
        min_interval: seconds between redraws of the live bar.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        unit: str = "steps",
        enabled: bool = True,
        smooth: int = 50,
        min_interval: float = 0.5,
    ) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total must be an int >= 0, got {total!r}")
        if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
            raise ValueError(f"smooth must be an int >= 1, got {smooth!r}")
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.min_interval = min_interval
        self.count = 0
        self.start = time.perf_counter()
        self._last_draw = -math.inf
        self._recent: dict[str, deque[float]] = {}
        self._smooth = smooth
        self._handle: Any = None
        self._bar: Any = None
        if not enabled:
            return
        if _in_kernel():
            from IPython.display import display

            self._handle = display(self._live(), display_id=True)
        else:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, mininterval=min_interval, file=sys.stderr)

    def metrics(self) -> dict[str, float]:
        """Each metric's mean over its last ``smooth`` values."""
        return {name: sum(values) / len(values) for name, values in self._recent.items()}

    def _metrics_text(self) -> str:
        """``", loss 0.41, acc 0.9"`` (empty without metrics)."""
        return "".join(f", {name} {value:.4g}" for name, value in self.metrics().items())

    def _live(self) -> _Text:
        seconds = time.perf_counter() - self.start
        text = f"{self.desc}: {self.count}/{self.total} [{seconds:.0f} s{self._metrics_text()}]"
        bar = f'<progress value="{self.count}" max="{max(self.total, 1)}"></progress>'
        return _Text(text, f"<div>{bar} <code>{html.escape(text)}</code></div>")

    def update(self, n: int = 1, /, **metrics: float) -> None:
        """Advance by ``n`` steps and record the latest value of each metric (e.g. ``loss=0.3``)."""
        self.count += n
        for name, value in metrics.items():
            self._recent.setdefault(name, deque(maxlen=self._smooth)).append(float(value))
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.update(n)
            if metrics and now - self._last_draw >= self.min_interval:
                self._bar.set_postfix_str(self._metrics_text()[2:], refresh=False)
                self._last_draw = now
        elif now - self._last_draw >= self.min_interval:
            self._handle.update(self._live())
            self._last_draw = now

    def summary(self) -> str:
        """``desc: count unit in S s, metric value, ...`` (metrics smoothed)."""
        seconds = time.perf_counter() - self.start
        return f"{self.desc}: {self.count} {self.unit} in {seconds:.1f} s{self._metrics_text()}"

    def close(self) -> None:
        """Replace the live bar with the summary line."""
        if not self.enabled:
            return
        line = self.summary()
        if self._handle is not None:
            self._handle.update(_Text(line))
        if self._bar is not None:
            self._bar.close()
            print(line, file=sys.stderr)
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is not None and self.enabled:
            self.desc += f" (stopped by {kind.__name__})"
        self.close()
