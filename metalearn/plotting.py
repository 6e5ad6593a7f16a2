"""Figures that more than one chapter draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from metalearn.core import TaskBatch
from metalearn.rl.rollouts import Trajectories


def smooth(values: Sequence[float] | torch.Tensor, width: int = 25) -> torch.Tensor:
    """Moving average of a training curve over ``width`` consecutive steps: ``[n]`` ->
    ``[n - width + 1]`` (the curve itself when it is shorter than ``width``).

    Plot it against ``torch.arange(width - 1, n)`` to keep each point at its last step.
    """
    values = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    return values.unfold(0, width, 1).mean(1) if len(values) >= width else values


def show_episodes(
    batch: TaskBatch,
    image_shape: Sequence[int],
    *,
    class_names: torch.Tensor | None = None,
    num_tasks: int = 2,
    max_query: int = 6,
) -> Figure:
    """Draw the support and query images of the first ``num_tasks`` tasks of an image ``batch``.

    One row per task: its support set (every image, titled with its label), a gap,
    then up to ``max_query`` query images. ``class_names [T, N]`` (e.g. the digit
    each episode label stands for) adds ``label = name`` to the titles.
    """
    num_tasks = min(num_tasks, batch.num_tasks)
    support, query = batch.support_x.shape[1], min(max_query, batch.query_x.shape[1])
    if num_tasks < 1 or query < 1:
        raise ValueError(f"num_tasks and max_query must be >= 1, got {num_tasks} and {max_query}")
    columns = support + 1 + query
    fig, axes = plt.subplots(
        num_tasks, columns, figsize=(0.9 * columns, 1.25 * num_tasks + 0.5), squeeze=False
    )
    for t in range(num_tasks):
        cells = [(batch.support_x, batch.support_y, i, axes[t, i]) for i in range(support)]
        # spread the shown queries over the whole (label-ordered) query set
        shown = torch.linspace(0, batch.query_x.shape[1] - 1, query).round().long().tolist()
        cells += [
            (batch.query_x, batch.query_y, q, axes[t, support + 1 + j]) for j, q in enumerate(shown)
        ]
        axes[t, support].axis("off")
        for images, labels, i, ax in cells:
            ax.imshow(images[t, i].detach().cpu().reshape(*image_shape).numpy(), cmap="gray_r")
            label = int(labels[t, i])
            name = f"={int(class_names[t, label])}" if class_names is not None else ""
            ax.set_title(f"{label}{name}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[t, 0].set_ylabel(f"task {t + 1}", fontsize=9)
    fig.text(
        support / 2 / columns,
        0.98,
        "support set (label=digit)" if class_names is not None else "support set (label)",
        ha="center",
        va="top",
    )
    fig.text((support + 1 + query / 2) / columns, 0.98, "query set", ha="center", va="top")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def _box(ax: plt.Axes, xy: tuple[float, float], text: str, color: str) -> None:
    ax.text(
        *xy,
        text,
        ha="center",
        va="center",
        fontsize=10,
        bbox={"boxstyle": "round,pad=0.5", "facecolor": color, "edgecolor": "0.3"},
    )


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], **style) -> None:
    ax.annotate(
        "", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="0.25", lw=1.4, **style)
    )


def draw_meta_loop(num_tasks: int = 3) -> Figure:
    """Schematic of optimiser-based meta-learning: per-task inner loops inside one outer loop."""
    fig, ax = plt.subplots(figsize=(10, 4.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(-1.8, num_tasks)
    ax.axis("off")
    middle = (num_tasks - 1) / 2
    _box(ax, (0.9, middle), "meta-parameters\n$\\theta$", "#fde9c9")
    for i in range(num_tasks):
        y, n = num_tasks - 1 - i, i + 1
        _arrow(ax, (1.65, middle), (2.65, y))
        _box(
            ax,
            (4.2, y),
            f"inner loop on task {n}'s support set\n"
            f"$\\theta'_{n} = \\theta - \\alpha\\nabla_\\theta "
            f"\\mathcal{{L}}^{{supp}}_{n}(\\theta)$",
            "#dbe9f6",
        )
        _arrow(ax, (5.75, y), (6.3, y))
        _box(
            ax,
            (7.4, y),
            f"loss on task {n}'s query set\n$\\mathcal{{L}}^{{query}}_{n}(\\theta'_{n})$",
            "#e2f0d9",
        )
        _arrow(ax, (8.35, y), (8.6 - 0.25 * i, -1.1), connectionstyle="arc3,rad=-0.3")
    _box(
        ax,
        (6.9, -1.35),
        "outer loop: $\\theta \\leftarrow \\theta - \\beta\\nabla_\\theta"
        "\\sum_i \\mathcal{L}^{query}_i(\\theta'_i)$",
        "#f8d7da",
    )
    ax.annotate(
        "",
        xy=(0.9, middle - 0.35),
        xytext=(5.5, -1.35),
        arrowprops={
            "arrowstyle": "->",
            "color": "#a33",
            "lw": 1.6,
            "connectionstyle": "arc3,rad=-0.25",
        },
    )
    ax.text(0.2, -1.6, "repeat with freshly sampled tasks", fontsize=8, color="#a33")
    ax.set_title("Inner loop (adapt to one task) inside the outer loop (learn how to adapt)")
    fig.tight_layout()
    return fig


def show_predictions(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor,
    probabilities: torch.Tensor,
    *,
    max_query: int = 10,
    title: str = "",
) -> Figure:
    """One image task: the support set (top row, titled with labels), then up to ``max_query``
    queries titled ``predicted label (probability)``, green when right and red when wrong.

    Shapes: ``support_x [S, C, H, W]``, ``support_y [S]``, ``query_x [Q, C, H, W]``,
    ``query_y [Q]``, ``probabilities [Q, N]`` (rows sum to one).
    """
    if probabilities.shape[0] != query_x.shape[0]:
        raise ValueError(
            f"probabilities must have one row per query ({query_x.shape[0]}), "
            f"got {tuple(probabilities.shape)}"
        )
    shown = (
        torch.linspace(0, query_x.shape[0] - 1, min(max_query, query_x.shape[0]))
        .round()
        .long()
        .tolist()
    )
    columns = max(support_x.shape[0], len(shown))
    fig, axes = plt.subplots(2, columns, figsize=(0.95 * columns, 2.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(support_x.shape[0]):
        axes[0, i].imshow(support_x[i, 0].detach().cpu().numpy(), cmap="gray_r")
        axes[0, i].set_title(f"label {int(support_y[i])}", fontsize=8)
    confidence, predicted = probabilities.detach().cpu().max(dim=-1)
    for column, q in enumerate(shown):
        right = int(predicted[q]) == int(query_y[q])
        axes[1, column].imshow(query_x[q, 0].detach().cpu().numpy(), cmap="gray_r")
        axes[1, column].set_title(
            f"{int(predicted[q])} ({confidence[q]:.2f})",
            fontsize=8,
            color="green" if right else "red",
        )
    axes[0, 0].text(
        -0.3, 0.5, "support", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right"
    )
    axes[1, 0].text(
        -0.3, 0.5, "query", transform=axes[1, 0].transAxes, rotation=90, va="center", ha="right"
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_trajectories(
    goals: torch.Tensor,
    runs: Mapping[str, Trajectories],
    *,
    num_tasks: int = 4,
    limit: float = 1.5,
    title: str = "",
) -> Figure:
    """Paths of 2-D navigation: one panel per task (the first ``num_tasks``), each label's
    trajectories in their own colour, the start (a dot) and the goal (a cross).

    ``goals [T, 2]``; ``runs`` maps a label to :class:`~metalearn.rl.rollouts.Trajectories`
    whose observations start with the position (``[T, N, H, obs_dim]``).
    """
    num_tasks = min(num_tasks, goals.shape[0])
    if num_tasks < 1 or not runs:
        raise ValueError("need at least one task and one run to draw")
    fig, axes = plt.subplots(
        1,
        num_tasks,
        figsize=(3.3 * num_tasks, 3.6),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for task, ax in enumerate(axes[0]):
        for index, (label, run) in enumerate(runs.items()):
            color = f"C{index}"
            for n in range(run.observations.shape[1]):
                valid = run.valid[task, n].cpu() > 0
                path = run.observations[task, n, :, :2].cpu()[valid]
                ax.plot(
                    *path.T,
                    "-",
                    color=color,
                    lw=1.2,
                    marker=".",
                    ms=2,
                    label=label if n == 0 else None,
                )
        ax.plot(0, 0, "ko", ms=5)
        ax.plot(*goals[task].cpu(), "kx", ms=11, mew=2.5, label="goal")
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xlabel="x", aspect="equal")
        ax.set_title(f"task {task}")
    axes[0, 0].set_ylabel("y")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title)
    return fig


GATE_TITLES = {
    "input gate": "input gate $i_t$ (the learned rate)",
    "shrinkage": "shrinkage $1 - f_t$ (forget gate)",
}


def gate_quantiles(history: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """10%, 50% and 90% of an LSTM meta-learner's input gate and shrinkage ``1 - f`` at each
    inner step, over episodes and parameters.

    Args:
        history: :class:`~metalearn.LSTMMetaLearner`'s ``history`` after an adaptation, with
            ``"input_gate"`` and ``"forget_gate"``, each ``[steps, ...]``.

    Returns:
        ``{"input gate": [3, steps], "shrinkage": [3, steps]}`` (rows: 10%, 50%, 90%), float64
        on the CPU. A shrinkage of 0 (``f = 1`` in float32) is kept at 1e-8, to show on a log
        scale.
    """
    missing = {"input_gate", "forget_gate"} - set(history)
    if missing:
        raise ValueError(f"history lacks {sorted(missing)}: adapt the meta-learner first")
    values = {"input gate": history["input_gate"], "shrinkage": 1 - history["forget_gate"]}
    levels = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    return {
        key: value.detach().double().cpu().flatten(1).clamp_min(1e-8).quantile(levels, dim=1)
        for key, value in values.items()
    }


def show_gates(
    gates: Mapping[str, Mapping[str, torch.Tensor]],
    axes: Sequence[plt.Axes] | None = None,
    start: Mapping[str, float] | None = None,
) -> Sequence[plt.Axes]:
    """The gates of one or more LSTM meta-learners per inner step, on two log-scale panels
    (input gate, shrinkage): the median as a line, 10% to 90% as a band.

    Args:
        gates: a label for each learner -> its :func:`gate_quantiles`.
        axes: two axes to draw on (default: a new figure).
        start: the value of each panel's gate at initialisation (a dotted line), by key.

    Returns:
        The two axes.
    """
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3.2))[1]
    if len(axes) != 2:
        raise ValueError(f"axes must be two axes (input gate, shrinkage), got {len(axes)}")
    for index, (label, quantiles) in enumerate(gates.items()):
        for ax, key in zip(axes, GATE_TITLES):
            low, mid, high = quantiles[key]
            steps = torch.arange(1, len(mid) + 1)
            ax.fill_between(steps, low, high, color=f"C{index}", alpha=0.25, lw=0)
            ax.plot(steps, mid, marker="o", ms=4, color=f"C{index}", label=label)
    for ax, (key, title) in zip(axes, GATE_TITLES.items()):
        if start is not None and key in start:
            ax.axhline(start[key], color="gray", linestyle=":", label="at initialisation")
        ax.set(yscale="log", xlabel="inner step $t$", title=title)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[1].text(
        0.03,
        0.03,
        "lines: median; bands: 10%-90% of parameters",
        fontsize=7,
        transform=axes[1].transAxes,
    )
    return axes
