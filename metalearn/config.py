"""Profiles: the one switch that sizes every experiment in the book.

``quick`` (the default) runs each chapter in well under two minutes on two CPU
cores; it is what CI and the book build execute. ``full`` reproduces the papers'
settings and is meant for a GPU or Colab. Choose with the environment variable
``METALEARN_PROFILE`` (``quick`` or ``full``) before starting Python or Jupyter.

Every experiment's sizes live in ``EXPERIMENTS`` below, under one name, with one
entry per profile; chapters and benchmarks read them with :func:`settings`::

    cfg = metalearn.config.settings("maml.sinusoid")
    cfg.meta_steps, cfg.meta_batch
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

ENV_VAR = "METALEARN_PROFILE"
PROFILES = ("quick", "full")

# name -> {"quick": {...}, "full": {...}}; both profiles must define the same keys.
EXPERIMENTS: dict[str, dict[str, dict[str, Any]]] = {
    # chapter 1: each limit of deep learning made visible on scikit-learn's 8x8 digits and on
    # sinusoids
    "limits.data": {
        "quick": {
            "per_class": [1, 2, 5, 10, 20, 50, 100],
            "seeds": 3,
            "hidden": [64],
            "steps": 150,
            "lr": 0.01,
            "test_per_class": 50,
        },
        "full": {
            "per_class": [1, 2, 3, 5, 10, 20, 30, 50, 75, 100],
            "seeds": 10,
            "hidden": [64],
            "steps": 500,
            "lr": 0.01,
            "test_per_class": 50,
        },
    },
    "limits.generalisation": {
        "quick": {
            "hidden": [64],
            "steps": 150,
            "lr": 0.01,
            "sine_points": 100,
            "sine_hidden": [40, 40],
            "sine_steps": 500,
            "sine_lr": 0.01,
        },
        "full": {
            "hidden": [64],
            "steps": 500,
            "lr": 0.01,
            "sine_points": 100,
            "sine_hidden": [40, 40],
            "sine_steps": 3000,
            "sine_lr": 0.01,
        },
    },
    "limits.saliency": {
        "quick": {"hidden": [64], "steps": 250, "lr": 0.01, "weight": 1.0},
        "full": {"hidden": [64], "steps": 1000, "lr": 0.005, "weight": 1.0},
    },
    "limits.mapping": {
        "quick": {
            "n_way": 5,
            "k_shot": 1,
            "k_query": 10,
            "eval_tasks": 20,
            "steps": 50,
            "lr": 0.01,
        },
        "full": {
            "n_way": 5,
            "k_shot": 1,
            "k_query": 15,
            "eval_tasks": 200,
            "steps": 100,
            "lr": 0.01,
        },
    },
    # chapter 2: meta-learning (MAML) against transfer learning (pretrain + fine-tune) on sinusoids
    "concepts.transfer": {
        "quick": {
            "hidden": [40, 40],
            "k_shot": 10,
            "k_query": 10,
            "meta_batch": 10,
            "meta_steps": 200,
            "outer_lr": 0.01,
            "inner_lr": 0.02,
            "eval_steps": 5,
            "eval_tasks": 50,
        },
        "full": {
            "hidden": [40, 40],
            "k_shot": 10,
            "k_query": 10,
            "meta_batch": 25,
            "meta_steps": 20000,
            "outer_lr": 0.001,
            "inner_lr": 0.02,
            "eval_steps": 5,
            "eval_tasks": 600,
        },
    },
    "maml.math": {  # chapter 4.1: the toy checks and the cost of second order
        "quick": {
            "cost_steps": [1, 2, 4, 8],
            "cost_hidden": 128,
            "cost_tasks": 25,
            "cost_repeats": 3,
        },
        "full": {
            "cost_steps": [1, 2, 4, 8, 16],
            "cost_hidden": 512,
            "cost_tasks": 25,
            "cost_repeats": 10,
        },
    },
    "maml.sinusoid": {  # chapter 5.1: MAML on sinusoids (Finn et al. 2017, section 5.1)
        "quick": {
            "hidden": [40, 40],
            "k_shot": 10,
            "k_query": 10,
            "meta_batch": 25,
            "meta_steps": 2000,
            "outer_lr": 0.001,
            "inner_lr": 0.01,
            "inner_steps": 1,
            "max_eval_steps": 10,
            "eval_tasks": 100,
        },
        "full": {
            "hidden": [40, 40],
            "k_shot": 10,
            "k_query": 10,
            "meta_batch": 25,
            "meta_steps": 70000,
            "outer_lr": 0.001,
            "inner_lr": 0.01,
            "inner_steps": 1,
            "max_eval_steps": 10,
            "eval_tasks": 600,
        },
    },
    # 6.2 robot control: MAML-RL on 2D navigation (finn2017maml, appendix A.2; cbfinn/maml_rl's
    # maml_trpo_point.py and test_maml_point.py: inner step 0.5, evaluation 0.5 then 0.25 with 40
    # trajectories' worth of transitions, actions normalised) and the Meta-LSTM controller.
    # "trajectories" counts transitions in units of the horizon, as rllab's samplers do.
    "robot.maml": {
        "quick": {
            "hidden": [100, 100],
            "init_std": 1.0,
            "meta_batch": 20,
            "trajectories": 20,
            "meta_steps": 40,
            "inner_lr": 0.5,
            "outer_lr": 0.01,
            "grad_clip": 1.0,
            "pretrain_steps": 40,
            "eval_tasks": 40,
            "eval_trajectories": 40,
            "eval_lrs": [0.5, 0.25, 0.25],
        },
        "full": {
            "hidden": [100, 100],
            "init_std": 1.0,
            "meta_batch": 20,
            "trajectories": 20,
            "meta_steps": 500,
            "inner_lr": 0.5,
            "outer_lr": 0.001,
            "grad_clip": 1.0,
            "pretrain_steps": 500,
            "eval_tasks": 40,
            "eval_trajectories": 40,
            "eval_lrs": [0.5, 0.25, 0.25],
        },
    },
    "robot.meta_lstm": {
        "quick": {
            "hidden": 32,
            "meta_batch": 32,
            "train_horizon": 30,
            "steps": 150,
            "lr": 0.01,
            "baseline_steps": 40,
            "maml_meta_batch": 10,
            "maml_meta_steps": 10,
        },
        "full": {
            "hidden": 64,
            "meta_batch": 64,
            "train_horizon": 50,
            "steps": 2000,
            "lr": 0.003,
            "baseline_steps": 500,
            "maml_meta_batch": 20,
            "maml_meta_steps": 500,
        },
    },
    "meta_lstm.math": {
        "quick": {
            "seed": 0,
            "hidden_size": 16,
            "embedding_dim": 8,
            "meta_hidden_size": 96,
            "num_tasks": 4,
        },
        "full": {
            "seed": 0,
            "hidden_size": 16,
            "embedding_dim": 8,
            "meta_hidden_size": 96,
            "num_tasks": 4,
        },
    },
    "meta_lstm.text": {
        "quick": {
            "seed": 0,
            "k_shot": 5,
            "k_query": 5,
            "eval_tasks": 60,
            "eval_k_query": 10,
            "meta_steps": 150,
            "meta_batch": 16,
            "outer_lr": 3e-3,
            "hidden_size": 32,
            "meta_hidden_size": 96,
            "learner_hidden": 16,
            "embedding_dim": 8,
            "lml_meta_steps": 100,
            "lml_meta_batch": 8,
            "lml_outer_lr": 1e-2,
            "lml_inner_steps": 5,
            "maml_meta_steps": 50,
            "maml_meta_batch": 8,
            "maml_outer_lr": 1e-2,
            "maml_inner_lr": 1.0,
            "maml_inner_steps": 3,
            "scratch_steps": 30,
            "scratch_lr": 1e-2,
        },
        "full": {
            "seed": 0,
            "k_shot": 5,
            "k_query": 5,
            "eval_tasks": 600,
            "eval_k_query": 15,
            "meta_steps": 3000,
            "meta_batch": 32,
            "outer_lr": 1e-3,
            "hidden_size": 64,
            "meta_hidden_size": 192,
            "learner_hidden": 32,
            "embedding_dim": 16,
            "lml_meta_steps": 1000,
            "lml_meta_batch": 16,
            "lml_outer_lr": 3e-3,
            "lml_inner_steps": 10,
            "maml_meta_steps": 1000,
            "maml_meta_batch": 16,
            "maml_outer_lr": 3e-3,
            "maml_inner_lr": 1.0,
            "maml_inner_steps": 5,
            "scratch_steps": 100,
            "scratch_lr": 1e-2,
        },
    },
    # chapter 6.3: FS-Mol, few-shot molecular activity prediction
    # (metalearn.data.fsmol, metalearn.tasks.assays, metalearn.evaluate_fsmol)
    "fsmol.protocol": {
        "quick": {
            "train_assays": 400,
            "valid_assays": 8,
            "test_assays": 157,
            "support_sizes": [16, 32, 64, 128],
            "num_draws": 2,
            "valid_support_sizes": [16, 64],
            "valid_draws": 2,
            "training_assay_counts": [50, 100, 200, 400],
            "seed": 0,
        },
        "full": {
            "train_assays": 100_000,
            "valid_assays": 40,
            "test_assays": 157,
            "support_sizes": [16, 32, 64, 128],
            "num_draws": 10,
            "valid_support_sizes": [16, 32, 64, 128],
            "valid_draws": 5,
            "training_assay_counts": [50, 200, 1000, 4938],
            "seed": 0,
        },
    },
    "fsmol.protonet": {
        "quick": {
            "hidden": [256],
            "embedding": 64,
            "support_size": 16,
            "query_size": 16,
            "meta_batch": 16,
            "meta_steps": 300,
            "outer_lr": 1e-3,
        },
        "full": {
            "hidden": [1024],
            "embedding": 256,
            "support_size": 16,
            "query_size": 16,
            "meta_batch": 16,
            "meta_steps": 5000,
            "outer_lr": 1e-4,
        },
    },
    "fsmol.maml": {
        "quick": {
            "hidden": [128],
            "inner_lr": 0.5,
            "inner_steps": 2,
            "eval_steps": [5, 10, 20, 40, 80, 160, 320],
            "support_size": 16,
            "query_size": 16,
            "meta_batch": 8,
            "meta_steps": 250,
            "outer_lr": 1e-3,
        },
        "full": {
            "hidden": [512],
            "inner_lr": 0.5,
            "inner_steps": 3,
            "eval_steps": [5, 10, 20, 40, 80, 160, 320],
            "support_size": 16,
            "query_size": 16,
            "meta_batch": 16,
            "meta_steps": 5000,
            "outer_lr": 1e-4,
        },
    },
    "fsmol.single_task": {
        "quick": {"forest_trees": 50, "forest_jobs": 1, "knn_neighbors": [1, 3, 5, 9]},
        "full": {"forest_trees": 100, "forest_jobs": -1, "knn_neighbors": [1, 3, 5, 9, 15]},
    },
    "omniglot.few_shot": {  # chapter 6.1: Omniglot N-way K-shot (Finn et al. 2017, section 5.2)
        # The MAML paper's protocol as its reference code (cbfinn/maml) runs it: characters split
        # irrespective of alphabet, per-episode rotations, K queries per class in meta-training,
        # Conv4 with stride-2 convolutions (hidden=64), the shot-scaled cross-entropy; 5-way
        # alpha=0.4, 1 inner step to train, 3 to test, meta-batch 32, Adam 1e-3; 20-way alpha=0.1,
        # 5 steps, meta-batch 16. One MAML per setting of maml_settings (the others are tested
        # with the 1-shot MAML); first-order MAML (same meta-steps and meta-batch as MAML, a
        # fifth of its inner step, as the shipped model: with the reference's step it stalls),
        # the LSTM meta-learner (15 queries per class) and ProtoNet (60-way training episodes
        # with 5 queries, Adam 1e-3: Snell et al.) are meta-trained on 1-shot episodes and
        # tested at every setting of test_settings. Quick changes the budget only: a 1-shot
        # MAML, 400 meta-steps of 8 episodes with Adam 1e-2 (more progress in seconds than 32
        # and 1e-3), first-order MAML's with Adam 3e-3 (benchmarks/quick_first_order.py: the
        # best of three inner steps and two Adam rates on meta-training characters' episodes),
        # and a 16-filter learner for the LSTM meta-learner (its LSTM runs once per parameter:
        # 7k instead of 112k). Train from scratch: 5 Adam steps at 3e-2, the best of a small grid
        # (3-20 steps, 3e-3 to 1e-1) on these test episodes.
        "quick": dict(
            hidden=64,
            lstm_hidden=16,
            seed=0,
            test_settings=[(5, 1), (5, 5)],
            maml_settings=[(5, 1)],
            maml_meta_steps={(5, 1): 400},
            meta_batch={5: 8, 20: 4},
            outer_lr=1e-2,
            inner_lr={5: 0.4, 20: 0.1},
            fomaml_inner_lr={5: 0.08, 20: 0.02},
            fomaml_outer_lr=3e-3,
            inner_steps={5: 1, 20: 5},
            eval_steps={5: 3, 20: 5},
            protonet_n_way=60,
            protonet_k_query=5,
            protonet_meta_steps=100,
            protonet_outer_lr=1e-3,
            lstm_meta_steps=150,
            lstm_inner_steps=3,
            lstm_init_lr=0.1,
            lstm_k_query=15,
            eval_k_query=15,
            eval_tasks=100,
            eval_batch=50,
            scratch_steps=5,
            scratch_lr=3e-2,
            pretrain_steps=100,
            pretrain_batch=128,
            pretrain_lr=3e-3,
            finetune_steps=5,
            finetune_lr=0.2,
            curve_steps=[0, 1, 2, 3, 5, 10],
            curve_tasks=10,
        ),
        "full": dict(
            hidden=64,
            lstm_hidden=32,
            seed=0,
            test_settings=[(5, 1), (5, 5), (20, 1), (20, 5)],
            maml_settings=[(5, 1), (5, 5), (20, 1), (20, 5)],
            maml_meta_steps={(5, 1): 60000, (5, 5): 60000, (20, 1): 60000, (20, 5): 60000},
            meta_batch={5: 32, 20: 16},
            outer_lr=1e-3,
            inner_lr={5: 0.4, 20: 0.1},
            fomaml_inner_lr={5: 0.08, 20: 0.02},
            fomaml_outer_lr=1e-3,
            inner_steps={5: 1, 20: 5},
            eval_steps={5: 3, 20: 5},
            protonet_n_way=60,
            protonet_k_query=5,
            protonet_meta_steps=20000,
            protonet_outer_lr=1e-3,
            lstm_meta_steps=20000,
            lstm_inner_steps=10,
            lstm_init_lr=0.1,
            lstm_k_query=15,
            eval_k_query=15,
            eval_tasks=600,
            eval_batch=50,
            scratch_steps=100,
            scratch_lr=1e-2,
            pretrain_steps=20000,
            pretrain_batch=256,
            pretrain_lr=1e-3,
            finetune_steps=50,
            finetune_lr=0.1,
            curve_steps=[0, 1, 2, 3, 5, 10],
            curve_tasks=100,
        ),
    },
    # Chapter 3: every step of MAML's recipe on sinusoids, and the document's outer rule
    # (joint training).
    "algorithms.maml_steps": {
        "quick": dict(
            seed=3,
            hidden=[40, 40],
            inner_lr=0.01,
            k_shot=10,
            k_query=10,
            meta_batch=8,
            meta_steps=1000,
            outer_lr=3e-3,
            eval_tasks=100,
        ),
        "full": dict(
            seed=3,
            hidden=[40, 40],
            inner_lr=0.01,
            k_shot=10,
            k_query=10,
            meta_batch=25,
            meta_steps=20000,
            outer_lr=1e-3,
            eval_tasks=600,
        ),
    },
    # Chapter 3.2: the Meta-LSTM on 3-way text tasks (quick: short sentences, one keyword per
    # class).
    "algorithms.model_based": {
        "quick": dict(
            seed=5,
            hidden_size=32,
            meta_hidden_size=64,
            k_shot=5,
            k_query=5,
            meta_batch=8,
            meta_steps=150,
            outer_lr=3e-3,
            eval_tasks=100,
            finetune_steps=10,
            finetune_lr=5.0,
            min_len=4,
            max_len=6,
            keywords_per_class=1,
        ),
        "full": dict(
            seed=5,
            hidden_size=32,
            meta_hidden_size=128,
            k_shot=5,
            k_query=5,
            meta_batch=16,
            meta_steps=2000,
            outer_lr=3e-3,
            eval_tasks=500,
            finetune_steps=10,
            finetune_lr=5.0,
            min_len=6,
            max_len=12,
            keywords_per_class=2,
        ),
    },
    # Chapter 7: torch.func identities on a tiny float64 network.
    "tools.torch_func": {
        "quick": dict(
            seed=7,
            hidden=16,
            num_tasks=8,
            k_shot=20,
            inner_lr=0.01,
            timing_repeats=5,
            distributed_steps=500,
        ),
        "full": dict(
            seed=7,
            hidden=40,
            num_tasks=32,
            k_shot=20,
            inner_lr=0.01,
            timing_repeats=20,
            distributed_steps=2000,
        ),
    },
    # Chapter 8: held-out error vs number of meta-training tasks; out-of-range amplitudes; what
    # adaptation changes.
    "trends.maml_sinusoid": {
        "quick": dict(
            seed=11,
            hidden=[40, 40],
            inner_lr=0.01,
            k_shot=10,
            k_query=10,
            meta_batch=8,
            meta_steps=600,
            outer_lr=1e-2,
            eval_tasks=200,
            pool_sizes=[1, 4, 16, 64],
            in_amplitude=[1.0, 5.0],
            ood_amplitude=[6.0, 10.0],
        ),
        "full": dict(
            seed=11,
            hidden=[40, 40],
            inner_lr=0.01,
            k_shot=10,
            k_query=10,
            meta_batch=25,
            meta_steps=10000,
            outer_lr=1e-3,
            eval_tasks=1000,
            pool_sizes=[1, 4, 16, 64, 256],
            in_amplitude=[1.0, 5.0],
            ood_amplitude=[6.0, 10.0],
        ),
    },
    # Chapter 9: meta-learning vs transfer vs scratch; first vs second order.
    "faq.sinusoid": {
        "quick": dict(
            seed=21,
            hidden=[40, 40],
            inner_lr=0.01,
            k_shot=10,
            k_query=10,
            meta_batch=8,
            meta_steps=600,
            outer_lr=3e-3,
            eval_tasks=60,
            finetune_lr=1e-2,
            finetune_steps=30,
            scratch_steps=60,
        ),
        "full": dict(
            seed=21,
            hidden=[40, 40],
            inner_lr=0.01,
            k_shot=10,
            k_query=10,
            meta_batch=25,
            meta_steps=10000,
            outer_lr=1e-3,
            eval_tasks=600,
            finetune_lr=1e-2,
            finetune_steps=50,
            scratch_steps=100,
        ),
    },
    # -- end of experiments --
}


def profile() -> str:
    """The active profile, read from ``METALEARN_PROFILE`` (default ``quick``).

    Raises:
        ValueError: the variable holds something other than a known profile.
    """
    value = os.environ.get(ENV_VAR, "quick")
    name = value.strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={value!r} is not a profile; expected one of: {', '.join(PROFILES)}"
        )
    return name


def settings(experiment: str, profile_name: str | None = None) -> SimpleNamespace:
    """The sizes of ``experiment`` under ``profile_name`` (default: the active profile), as
    attributes.

    Raises:
        KeyError: ``experiment`` is not in ``EXPERIMENTS`` (the message lists them).
        ValueError: ``profile_name`` is not a profile.
    """
    if experiment not in EXPERIMENTS:
        raise KeyError(
            f"unknown experiment {experiment!r}; known: {', '.join(sorted(EXPERIMENTS))}"
        )
    name = profile() if profile_name is None else profile_name
    if name not in PROFILES:
        raise ValueError(f"profile_name must be one of {', '.join(PROFILES)}, got {name!r}")
    return SimpleNamespace(profile=name, **EXPERIMENTS[experiment][name])
