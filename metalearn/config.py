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
        raise ValueError(f"{ENV_VAR}={value!r} is not a profile; expected one of: {', '.join(PROFILES)}")
    return name


def settings(experiment: str) -> SimpleNamespace:
    """The sizes of ``experiment`` under the active profile, as attributes.

    Raises:
        KeyError: ``experiment`` is not in ``EXPERIMENTS`` (the message lists them).
    """
    if experiment not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {experiment!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    return SimpleNamespace(profile=profile(), **EXPERIMENTS[experiment][profile()])
