"""The LSTM meta-learner's coordinate-wise cell: ``lstm_cell`` against torch's ``nn.LSTMCell``.

    python benchmarks/lstm_meta_learner.py

The LSTM runs once per learner parameter: the shipped 5-way 1-shot learner has 28,485, so a
block of ten tasks is an LSTM batch of 284,850 rows. Prints seconds per task of the shipped
model's ``predict`` (twelve updates, 5-way 1-shot, 15 queries per class, in blocks of
``PREDICT_TASKS``) and milliseconds per meta-update (loss, backward, Adam step) at the sizes of
chapter 6.1's quick LSTM meta-learner (a 16-filter learner, three updates, eight episodes of
5-way 1-shot with 15 queries per class), with the package's cell and with torch's module in its
place; the median of 3 interleaved runs, 2 threads, and the largest difference of the
predictions.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

import metalearn as ml
import metalearn.algorithms.lstm_meta_learner as lstm_meta_learner
from metalearn import pretrained, reproduce
from metalearn.models import Conv4
from metalearn.tasks import EpisodeSampler

NAME = "omniglot-lstm-meta-learner-5way-1shot"


def torch_cell(x, state, cell):
    return cell(x, state)


def main() -> None:
    torch.set_num_threads(2)
    print(f"2 threads, torch {torch.__version__}")
    run = reproduce.RUNS[NAME]
    train_set, test_set = reproduce.omniglot()
    test = reproduce.test_batches(run, test_set, 20, seed=2024)[0]
    shipped = pretrained.load(NAME, torch.device("cpu"))
    torch.manual_seed(0)
    learner = ml.LSTMMetaLearner(
        Conv4(1, 5, 16, max_pool=False), F.cross_entropy, inner_steps=3, init_lr=0.1, n_way=5
    )
    optimizer = torch.optim.Adam(learner.parameters(), 1e-3)
    episodes = EpisodeSampler(train_set.images, train_set.labels, 5, 1, 15, seed=1, rotate=True)
    batches = [episodes.sample(8) for _ in range(5)]

    def predict() -> torch.Tensor:
        with torch.no_grad():
            return shipped.predict(test.support_x, test.support_y, test.query_x)

    def meta_update() -> None:
        for batch in batches:
            optimizer.zero_grad()
            learner.meta_loss(*batch).backward()
            optimizer.step()

    cells = {"lstm_cell": lstm_meta_learner.lstm_cell, "nn.LSTMCell": torch_cell}
    seconds: dict[tuple[str, str], list[float]] = {}
    outputs = {}
    try:
        for repeat in range(4):  # the first round warms up
            for label, cell in cells.items():
                lstm_meta_learner.lstm_cell = cell  # type: ignore[assignment]
                for workload, fn, count in (("predict", predict, 20), ("train", meta_update, 5)):
                    start = time.perf_counter()
                    result = fn()
                    if repeat:
                        seconds.setdefault((label, workload), []).append(
                            (time.perf_counter() - start) / count
                        )
                    if workload == "predict":
                        outputs[label] = result
    finally:
        lstm_meta_learner.lstm_cell = cells["lstm_cell"]
    for label in cells:
        per_task = statistics.median(seconds[label, "predict"])
        per_update = statistics.median(seconds[label, "train"])
        print(
            f"{label:12s} predict {per_task:.3f} s a task; "
            f"quick training {1000 * per_update:.0f} ms a meta-update"
        )
    gap = (outputs["lstm_cell"] - outputs["nn.LSTMCell"]).abs().max().item()
    print(f"largest difference of the predictions (float32): {gap:.1e}")


if __name__ == "__main__":
    main()
