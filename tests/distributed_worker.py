"""The meta-training runs that ``test_distributed.py`` compares across process counts.

    python tests/distributed_worker.py OUT STEPS META_BATCH                      # one process
    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py OUT STEPS META_BATCH

Every run seeds everything alike on every rank; rank 0 writes ``OUT/result-W.pt`` (``W`` the
number of processes): for each run its parameters (``state_dict``) and loss history.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import metalearn as ml
from metalearn import distributed
from metalearn.data.digits import IMAGE_SHAPE, DigitTasks
from metalearn.tasks import Sinusoid


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


def maml_sinusoid(meta_batch: int) -> tuple[torch.nn.Module, Callable, torch.optim.Optimizer]:
    ml.seed_everything(0)
    learner = ml.MAML(ml.MLP(1, [40, 40], 1), F.mse_loss, inner_lr=0.01)
    sampler = Sinusoid(seed=1).sampler(meta_batch, 10, 10)
    return learner, sampler, torch.optim.Adam(learner.parameters(), lr=1e-2)


def protonet_digits(meta_batch: int) -> tuple[torch.nn.Module, Callable, torch.optim.Optimizer]:
    ml.seed_everything(0)
    learner = ml.ProtoNet(conv_encoder(), num_classes=5)
    tasks = DigitTasks(range(10), n_way=5, seed=1)
    sampler = lambda: tasks.sample(meta_batch, 1, 5)
    # Not Adam: it divides each gradient element by its own size, and the gradient of the last
    # conv bias is zero up to rounding for channels that stay positive (distances ignore a shift
    # of the embedding), so Adam turns rounding into +-lr steps: even 1 against 2 threads in one
    # process then differ by 1e-2. SGD with momentum compares the averaged gradients themselves.
    return learner, sampler, torch.optim.SGD(learner.parameters(), lr=0.1, momentum=0.9)


def run_all(out: Path, steps: int, meta_batch: int) -> dict[str, dict]:
    """Train each run for ``steps`` steps; ``maml_resumed`` stops at step 2 with a checkpoint
    and resumes from it in a new learner, optimiser and sampler (as a restarted job would);
    ``nan_on_last_rank`` records the error of a run whose last task has a NaN target."""
    results = {}
    for name, make in [("maml_sinusoid", maml_sinusoid), ("protonet_digits", protonet_digits)]:
        learner, sampler, optimizer = make(meta_batch)
        history = ml.meta_train(
            learner, sampler, steps, optimizer, progress=name == "maml_sinusoid", desc=name
        )
        results[name] = {"state": learner.state_dict(), "history": history}
    checkpoint = out / f"resume-{distributed.world_size()}.pt"
    learner, sampler, optimizer = maml_sinusoid(meta_batch)
    ml.meta_train(learner, sampler, 2, optimizer, progress=False, checkpoint=checkpoint)
    learner, sampler, optimizer = maml_sinusoid(meta_batch)
    history = ml.meta_train(
        learner, sampler, steps, optimizer, progress=False, checkpoint=checkpoint
    )
    results["maml_resumed"] = {"state": learner.state_dict(), "history": history}
    learner, sampler, optimizer = maml_sinusoid(meta_batch)

    def poisoned() -> ml.TaskBatch:  # the last task, in the last rank's share, has a NaN target
        batch = sampler()
        batch.query_y[-1] = float("nan")
        return batch

    try:
        ml.meta_train(learner, poisoned, steps, optimizer, progress=False)
    except FloatingPointError as error:  # every rank stops alike, none waits for the others
        results["nan_on_last_rank"] = {"error": str(error)}
    return results


if __name__ == "__main__":
    out, steps, meta_batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    results = run_all(out, steps, meta_batch)
    if distributed.is_main():
        torch.save(results, out / f"result-{distributed.world_size()}.pt")
    distributed.shutdown()
