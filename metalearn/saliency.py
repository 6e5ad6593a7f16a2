"""Input-gradient saliency maps and how much two of them agree.

A saliency map (Simonyan et al., 2014) explains a classifier's decision on an
input by the gradient of the chosen class's score with respect to the input:
the pixels whose change would move that score most. Chapter 1 uses it to show
that test accuracy does not pin down *why* a network decides: two networks can
be equally accurate and explain themselves differently.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def input_gradients(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """Gradient of each example's ``labels`` logit w.r.t. its input: ``x [N, ...]``,
    ``labels [N]`` -> ``[N, ...]``.

    With ``create_graph=True`` the result is itself differentiable w.r.t. the
    model's parameters (for training on it); otherwise it is detached.
    """
    if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape [N] = [{x.shape[0]}], got {tuple(labels.shape)}")
    with torch.enable_grad():
        inputs = x.detach().requires_grad_(True)
        chosen = model(inputs).gather(1, labels[:, None]).sum()
        (gradient,) = torch.autograd.grad(chosen, inputs, create_graph=create_graph)
    return gradient if create_graph else gradient.detach()


def saliency_correlation(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Pearson correlation, per example, of two saliency maps ``[N, ...]`` -> ``[N]`` in
    ``[-1, 1]``.

    1 means the maps rank and scale pixels alike, 0 that they are unrelated.
    """
    if first.shape != second.shape or first.dim() < 2:
        raise ValueError(
            f"first and second must share a shape [N, ...], got {tuple(first.shape)} and "
            f"{tuple(second.shape)}"
        )
    a, b = first.flatten(1), second.flatten(1)
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def fit_with_other_explanation(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    reference: torch.Tensor,
    *,
    weight: float,
    lr: float,
    steps: int,
) -> nn.Module:
    """Train ``model`` to classify ``x`` while its saliency stays uncorrelated with ``reference``.

    Minimises ``cross_entropy + weight * mean(corr(saliency, reference) ** 2)``
    full-batch with Adam, where ``saliency = input_gradients(model, x, labels)``
    and ``reference [N, ...]`` is another model's saliency on the same inputs
    (double backpropagation through the input gradient). Trains in place; returns ``model``.
    """
    if reference.shape != x.shape:
        raise ValueError(
            f"reference must have the shape of x {tuple(x.shape)}, got {tuple(reference.shape)}"
        )
    if weight < 0 or lr <= 0 or steps < 0:
        raise ValueError(
            f"need weight >= 0, lr > 0, steps >= 0; got weight={weight}, lr={lr}, steps={steps}"
        )
    reference = reference.detach()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        inputs = x.detach().requires_grad_(True)
        logits = model(inputs)
        (saliency,) = torch.autograd.grad(
            logits.gather(1, labels[:, None]).sum(), inputs, create_graph=True
        )
        penalty = saliency_correlation(saliency, reference).pow(2).mean()
        loss = F.cross_entropy(logits, labels) + weight * penalty
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model
