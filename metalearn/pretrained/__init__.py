"""Models trained by :mod:`metalearn.reproduce` and shipped with the package.

Each model is a float32 ``state_dict`` (``NAME.pt``) and its provenance (``NAME.json``): the
command that trained it, the commit, the configuration, seed, steps, seconds, device, data, the
classes it trained on and its held-out results, and the sha256 of the weights.

Example::

    from metalearn import pretrained
    pretrained.names()                        # ['omniglot-maml-5way-1shot', ...]
    maml = pretrained.load("omniglot-maml-5way-1shot")
    logits = maml.predict(support_x, support_y, query_x)   # [T, Q, 5], adapted as evaluated
    pretrained.info("omniglot-maml-5way-1shot")["results"]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

FOLDER = Path(__file__).parent


def names() -> list[str]:
    """The shipped models, sorted."""
    return sorted(p.stem for p in FOLDER.glob("*.json") if (FOLDER / f"{p.stem}.pt").is_file())


def info(name: str) -> dict[str, Any]:
    """The provenance of ``name``: ``command``, ``commit``, ``config``, ``seed``, ``steps``,
    ``seconds``, ``device``, ``data``, ``train_classes``, ``results``, ``sha256``.

    Raises:
        ValueError: ``name`` is not a shipped model (the message lists them).
    """
    path = FOLDER / f"{name}.json"
    if not isinstance(name, str) or name not in names():
        raise ValueError(f"name must be one of the shipped models {names()}, got {name!r}")
    return json.loads(path.read_text())


def load(name: str, device: torch.device | str = "cpu") -> Any:
    """The learner ``name``, with its trained weights, configured as it was evaluated (MAML
    adapts with the test's inner steps and rate): ``predict(support_x, support_y, query_x)``
    returns logits ``[T, Q, N]``.

    Raises:
        ValueError: ``name`` is unknown, or the weights file does not match the sha256
            recorded when it was trained (a damaged or replaced file is never loaded).
    """
    from metalearn.reproduce import Run, build_learner

    record = info(name)
    path = FOLDER / f"{name}.pt"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != record["sha256"]:
        raise ValueError(
            f"{path} has sha256 {digest}, not the {record['sha256']} recorded when it was "
            "trained: the file is damaged or was replaced; reinstall the package"
        )
    learner = build_learner(Run(**record["config"]))
    state = torch.load(path, map_location="cpu", weights_only=True)
    learner.load_state_dict(state)  # type: ignore[attr-defined]
    return learner.to(device)  # type: ignore[attr-defined]
