"""The meta-training runs that ``test_distributed.py`` compares across process counts.

    python tests/distributed_worker.py OUT STEPS META_BATCH                      # one process
    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py OUT STEPS META_BATCH

Every run seeds everything alike on every rank; rank 0 writes ``OUT/result-W.pt`` (``W`` the
number of processes): for each run its parameters (``state_dict``) and loss history.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from sources import Calls

import metalearn as ml
from metalearn import distributed
from metalearn.data.digits import IMAGE_SHAPE
from metalearn.tasks import Sinusoid, digit_episodes


def conv_encoder(width: int = 16) -> torch.nn.Module:
    """[N, 64] digit images -> [N, 4 * width] embeddings (chapter 1's encoder, narrower)."""
    block = lambda c_in: [
        torch.nn.Conv2d(c_in, width, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
    ]
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, *IMAGE_SHAPE)), *block(1), *block(width), torch.nn.Flatten()
    )


Run = tuple[Any, ml.TaskSource, torch.optim.Optimizer]


def maml_sinusoid() -> Run:
    ml.seed_everything(0)
    learner = ml.MAML(ml.MLP(1, [40, 40], 1), F.mse_loss, inner_lr=0.01)
    source = Sinusoid(k_shot=10, k_query=10, seed=1)
    return learner, source, torch.optim.Adam(learner.parameters(), lr=1e-2)


def protonet_digits() -> Run:
    ml.seed_everything(0)
    learner = ml.ProtoNet(conv_encoder(), num_classes=5)
    source = digit_episodes(range(10), n_way=5, k_shot=1, k_query=5, seed=1)
    # Not Adam: it divides each gradient element by its own size, and the gradient of the last
    # conv bias is zero up to rounding for channels that stay positive (distances ignore a shift
    # of the embedding), so Adam turns rounding into +-lr steps: even 1 against 2 threads in one
    # process then differ by 1e-2. SGD with momentum compares the averaged gradients themselves.
    return learner, source, torch.optim.SGD(learner.parameters(), lr=0.1, momentum=0.9)


def run_all(out: Path, steps: int, meta_batch: int) -> dict[str, dict]:
    """Train each run for ``steps`` steps; ``maml_resumed`` stops at step 2 with a checkpoint
    and resumes from it in a new learner, optimiser and sampler (as a restarted job would);
    ``nan_on_last_rank`` records the error of a run whose last task has a NaN target."""
    results = {}
    for name, make in [("maml_sinusoid", maml_sinusoid), ("protonet_digits", protonet_digits)]:
        learner, source, optimizer = make()
        history = ml.meta_train(
            learner,
            source,
            steps,
            optimizer,
            meta_batch=meta_batch,
            progress=name == "maml_sinusoid",
            desc=name,
        )
        results[name] = {"state": learner.state_dict(), "history": history}
    checkpoint = out / f"resume-{distributed.world_size()}.pt"
    options = dict(meta_batch=meta_batch, progress=False, checkpoint=checkpoint)
    learner, source, optimizer = maml_sinusoid()
    ml.meta_train(learner, source, 2, optimizer, **options)
    learner, source, optimizer = maml_sinusoid()
    history = ml.meta_train(learner, source, steps, optimizer, **options)
    results["maml_resumed"] = {"state": learner.state_dict(), "history": history}
    learner, source, optimizer = maml_sinusoid()

    def poisoned() -> ml.TaskBatch:  # the last task, in the last rank's share, has a NaN target
        batch = source.sample(meta_batch)
        batch.query_y[-1] = float("nan")
        return batch

    try:
        ml.meta_train(
            learner, Calls(poisoned), steps, optimizer, meta_batch=meta_batch, progress=False
        )
    except FloatingPointError as error:  # every rank stops alike, none waits for the others
        results["nan_on_last_rank"] = {"error": str(error)}
    return results


if __name__ == "__main__":
    out, steps, meta_batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    results = run_all(out, steps, meta_batch)
    if distributed.is_main():
        torch.save(results, out / f"result-{distributed.world_size()}.pt")
    distributed.shutdown()
