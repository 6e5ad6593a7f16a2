"""How each meta-training experiment of :mod:`metalearn.config` builds its run, and the
command line that trains one by name.

A recipe turns an experiment's sizes (``config.settings(name)``) and a seed into what
:func:`metalearn.meta_train` needs: the learner, the task source, the number of steps and
the outer optimiser, as the experiment's chapter builds them. ``python -m metalearn.train``
trains any experiment listed in ``RECIPES``, on one process or under ``torchrun``::

    run = build("maml.sinusoid", seed=0, device=torch.device("cpu"))
    history = meta_train(run.learner, run.source, run.steps, run.optimizer, meta_batch=...)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F

from metalearn import config, distributed
from metalearn.core import MetaLearner, TaskSource
from metalearn.train import meta_train
from metalearn.utils import seed_everything


class Trainable(MetaLearner, Protocol):
    """A meta-learner that is also an ``nn.Module`` (its parameters are saved)."""

    def state_dict(self) -> dict[str, Any]: ...


@dataclass
class Run:
    """What ``meta_train`` needs for one experiment (sizes from the active profile)."""

    learner: Trainable
    source: TaskSource
    steps: int
    optimizer: torch.optim.Optimizer
    desc: str
    meta_batch: int
    grad_clip: float | None = None


def _sinusoid_maml(cfg: SimpleNamespace, seed: int, device: torch.device, desc: str) -> Run:
    """MAML on sinusoids (an MLP 1 -> hidden -> 1, MSE), whichever names the sizes go by."""
    from metalearn.algorithms.maml import MAML
    from metalearn.models import MLP
    from metalearn.tasks.sinusoid import Sinusoid

    inner_steps = getattr(cfg, "inner_steps", 1)
    learner = MAML(MLP(1, cfg.hidden, 1), F.mse_loss, cfg.inner_lr, inner_steps).to(device)
    return Run(
        learner,
        Sinusoid(cfg.k_shot, cfg.k_query, seed=seed),
        cfg.meta_steps,
        torch.optim.Adam(learner.parameters(), lr=cfg.outer_lr),
        desc,
        cfg.meta_batch,
    )


def _omniglot_maml(cfg: SimpleNamespace, seed: int, device: torch.device, desc: str) -> Run:
    """Chapter 6.1's MAML on Omniglot, its first setting (5-way 1-shot): the MAML paper's
    protocol (:func:`metalearn.reproduce.omniglot` data, per-episode rotations, ``K`` queries
    per class, the strided Conv4, the shot-scaled cross-entropy)."""
    from metalearn import reproduce

    n_way, k_shot = cfg.maml_settings[0]
    run = reproduce.Run(  # the reproduction's MAML, at the chapter's sizes
        "maml",
        n_way,
        k_shot,
        meta_batch=cfg.meta_batch[n_way],
        meta_steps=cfg.maml_meta_steps[n_way, k_shot],
        outer_lr=cfg.outer_lr,
        inner_lr=cfg.inner_lr[n_way],
        inner_steps=cfg.inner_steps[n_way],
        hidden=cfg.hidden,
        seed=seed,
    )
    learner = reproduce.training_learner(run).to(device)  # type: ignore[attr-defined]
    return Run(
        learner,
        reproduce.train_episodes(run, reproduce.omniglot()[0]),
        run.meta_steps,
        torch.optim.Adam(learner.parameters(), lr=run.outer_lr),
        f"{desc} ({n_way}-way {k_shot}-shot)",
        run.meta_batch,
    )


def _text_meta_lstm(cfg: SimpleNamespace, seed: int, device: torch.device, desc: str) -> Run:
    """Chapter 3.2's Meta-LSTM on 3-way text tasks."""
    from metalearn.algorithms.meta_lstm import MetaLSTM
    from metalearn.tasks.text import TextTasks

    tasks = TextTasks(
        "train",
        k_shot=cfg.k_shot,
        k_query=cfg.k_query,
        seed=seed,
        min_len=cfg.min_len,
        max_len=cfg.max_len,
        keywords_per_class=cfg.keywords_per_class,
    )
    learner = MetaLSTM(
        tasks.n_way, cfg.hidden_size, cfg.meta_hidden_size, vocab_size=tasks.vocab_size
    ).to(device)
    return Run(
        learner,
        tasks,
        cfg.meta_steps,
        torch.optim.Adam(learner.parameters(), lr=cfg.outer_lr),
        desc,
        cfg.meta_batch,
        grad_clip=1.0,
    )


def _fsmol_protonet(cfg: SimpleNamespace, seed: int, device: torch.device, desc: str) -> Run:
    """Chapter 6.3's prototypical network on ECFP fingerprints, as its table's: meta-trained
    on the training assays of the profile (all of them, in the seeded order of the chapter's
    curve), seeded after the data are read."""
    import numpy as np

    from metalearn.algorithms.protonet import ProtoNet
    from metalearn.data import fsmol
    from metalearn.models import MLP
    from metalearn.tasks.assays import AssaySampler, featurize_assays

    protocol = config.settings("fsmol.protocol", cfg.profile)
    data = fsmol.load_fsmol(assays="subset" if cfg.profile == "quick" else "all")
    assays = data.split("train")
    count = min(protocol.train_assays, len(assays))
    picked = np.random.default_rng(protocol.seed).choice(len(assays), count, replace=False)
    tasks, _ = featurize_assays([assays[i] for i in sorted(picked)], data.md5)
    order = np.random.default_rng(protocol.seed).permutation(len(tasks))
    seed_everything(seed)
    learner = ProtoNet(MLP(2048, cfg.hidden, cfg.embedding), num_classes=2).to(device)
    return Run(
        learner,
        AssaySampler([tasks[i] for i in order], cfg.support_size, cfg.query_size, seed=1),
        cfg.meta_steps,
        torch.optim.Adam(learner.parameters(), cfg.outer_lr),
        desc,
        cfg.meta_batch,
    )


# experiment -> (recipe, what it trains)
RECIPES: dict[str, tuple[Callable[..., Run], str]] = {
    "maml.sinusoid": (_sinusoid_maml, "MAML on sinusoids (chapter 5.1)"),
    "concepts.transfer": (_sinusoid_maml, "MAML on sinusoids (chapter 2)"),
    "algorithms.maml_steps": (_sinusoid_maml, "MAML on sinusoids (chapter 3)"),
    "trends.maml_sinusoid": (_sinusoid_maml, "MAML on sinusoids (chapter 8)"),
    "faq.sinusoid": (_sinusoid_maml, "MAML on sinusoids (chapter 9)"),
    "omniglot.few_shot": (_omniglot_maml, "MAML on Omniglot episodes (chapter 6.1)"),
    "algorithms.model_based": (_text_meta_lstm, "Meta-LSTM on text tasks (chapter 3.2)"),
    "fsmol.protonet": (_fsmol_protonet, "ProtoNet on FS-Mol's training assays (chapter 6.3)"),
}


def default_seed(experiment: str) -> int:
    """The seed the experiment's chapter uses (its ``seed`` setting, else 0)."""
    return getattr(config.settings(experiment), "seed", 0)


def build(experiment: str, seed: int, device: torch.device, profile: str | None = None) -> Run:
    """Seed everything with ``seed``, then build ``experiment``'s run on ``device``, with the
    sizes of ``profile`` (default: the active profile).

    Raises:
        KeyError: ``experiment`` has no recipe (the message lists those that have one).
    """
    if experiment not in RECIPES:
        raise KeyError(
            f"unknown experiment {experiment!r}; the experiments that meta-train are: "
            f"{', '.join(sorted(RECIPES))}"
        )
    recipe, desc = RECIPES[experiment]
    cfg = config.settings(experiment, profile)
    seed_everything(seed)
    return recipe(cfg, seed, device, desc)


# -- the command line: python -m metalearn.train EXPERIMENT -------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m metalearn.train EXPERIMENT [--steps N] [--seed S] [--out DIR]
    [--profile quick|full]``: meta-train an experiment of :mod:`metalearn.config` (see
    :data:`RECIPES`), writing ``DIR/model.pt`` (the learner's ``state_dict``),
    ``DIR/record.json`` and ``DIR/checkpoint.pt`` (rerun the same command to resume an
    interrupted run). Under ``torchrun --nproc_per_node=K`` the same command trains on K
    processes (rank 0 prints and writes). Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m metalearn.train",
        description="Meta-train an experiment of metalearn.config; under torchrun, on "
        "several processes.",
        epilog="experiments: " + ", ".join(sorted(RECIPES)),
    )
    parser.add_argument("experiment", help="an experiment of metalearn.config that meta-trains")
    parser.add_argument("--steps", type=int, help="meta-training steps (default: the profile's)")
    parser.add_argument("--seed", type=int, help="seed (default: the experiment's, else 0)")
    parser.add_argument("--out", help="output folder (default: runs/EXPERIMENT-PROFILE)")
    parser.add_argument("--profile", choices=config.PROFILES, help="default: $METALEARN_PROFILE")
    args = parser.parse_args(argv)
    if args.experiment not in RECIPES:
        parser.error(
            f"unknown experiment {args.experiment!r}; the experiments that meta-train are: "
            + ", ".join(sorted(RECIPES))
        )
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.profile is not None:
        os.environ[config.ENV_VAR] = args.profile
    profile = config.profile()
    seed = default_seed(args.experiment) if args.seed is None else args.seed
    out = Path(args.out or f"runs/{args.experiment}-{profile}")
    device = distributed.device()
    distributed.init(device)
    resumed = (out / "checkpoint.pt").exists()
    run = build(args.experiment, seed, device)
    steps = run.steps if args.steps is None else args.steps
    say = print if distributed.is_main() else lambda *_, **__: None
    world = distributed.world_size()
    say(
        f"{args.experiment} ({profile} profile): {steps} steps, meta-batch {run.meta_batch}, "
        f"seed {seed}, {world} process{'es' if world > 1 else ''} on {device}",
        flush=True,
    )
    start = time.perf_counter()
    history = meta_train(
        run.learner,
        run.source,
        steps,
        run.optimizer,
        meta_batch=run.meta_batch,
        grad_clip=run.grad_clip,
        device=device,
        desc=run.desc,
        checkpoint=out / "checkpoint.pt",
    )
    seconds = time.perf_counter() - start
    if distributed.is_main():
        tail = history[-50:]  # smoothed as the progress bar smooths
        record = {
            "experiment": args.experiment,
            "profile": profile,
            "steps": steps,
            "seed": seed,
            "meta_batch": run.meta_batch,
            "world_size": world,
            "device": str(device),
            "seconds": round(seconds, 3),
            "resumed": resumed,
            "final_loss": sum(tail) / len(tail),
            "command": shlex.join(
                ["python", "-m", "metalearn.train", *(sys.argv[1:] if argv is None else argv)]
            ),
        }
        out.mkdir(parents=True, exist_ok=True)
        torch.save(run.learner.state_dict(), out / "model.pt")
        (out / "record.json").write_text(json.dumps(record, indent=2) + "\n")
        say(f"final loss {record['final_loss']:.4g}; wrote {out / 'model.pt'} and record.json")
    distributed.shutdown()
    return 0
