"""FS-Mol's evaluation, one assay per call or several: chapter 6.3's table, learner by learner.

    python benchmarks/fsmol_evaluation.py        # about 6 minutes on 2 CPU cores

Scores chapter 6.3's four learners (untrained networks of its sizes: the time does not depend on
the weights; MAML adapting 160 steps in the support span, the chapter's choice) on the 157 test
assays of the offline subset, 4 support sizes, 2 draws each, with ``evaluate_fsmol`` calling each
learner on one assay at a time (``assays_per_call=1``) and on up to 16 of similar size at once
(the default), and prints the seconds of each (one run each, threads as torch sets them) and
the largest difference between an assay's scores by the two. ProtoNet, kNN and the forest give
the same scores; MAML's 160 steps of 0.5 amplify float32 rounding (the batched products sum in
another order) into differences of up to about 0.02 in one assay's ΔAUPRC (in float64 the
predictions agree to 1e-10: tests/test_support_span.py).
"""

from __future__ import annotations

import time

import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier

import metalearn as ml
from metalearn.algorithms import ProtoNet, SklearnLearner, SupportSpan
from metalearn.data import fsmol
from metalearn.evaluate_fsmol import evaluate_fsmol
from metalearn.losses import binary_cross_entropy
from metalearn.tasks.assays import featurize_assays


def main() -> None:
    data = fsmol.load_fsmol(assays="subset")
    tasks, _ = featurize_assays(data.split("test"), data.md5)
    torch.manual_seed(0)
    maml = ml.MAML(ml.MLP(2048, [128], 1), binary_cross_entropy, inner_lr=0.5)
    learners = {
        "ProtoNet": ProtoNet(ml.MLP(2048, [256], 64), num_classes=2),
        "MAML, 160 steps": SupportSpan(maml, 160),
        "random forest": SklearnLearner(RandomForestClassifier(50), seed=0),
        "kNN": SklearnLearner(KNeighborsClassifier(n_neighbors=5)),
    }
    print(f"{len(tasks)} assays x 4 support sizes x 2 draws, {torch.get_num_threads()} threads")
    print(
        f"{'learner':18s}{'1 per call':>12s}{'16 per call':>13s}{'speed-up':>10s}{'max diff':>10s}"
    )
    for name, learner in learners.items():
        seconds, scores = [], []
        for per_call in (1, 16):
            start = time.perf_counter()
            result = evaluate_fsmol(
                {name: learner}, tasks, num_draws=2, progress=False, assays_per_call=per_call
            )
            seconds.append(time.perf_counter() - start)
            scores.append([v for r in result[name].values() for v in r.per_assay.values()])
        difference = max(abs(a - b) for a, b in zip(*scores))
        print(
            f"{name:18s}{seconds[0]:11.1f}s{seconds[1]:12.1f}s"
            f"{seconds[0] / seconds[1]:9.1f}x{difference:10.1e}"
        )


if __name__ == "__main__":
    main()
