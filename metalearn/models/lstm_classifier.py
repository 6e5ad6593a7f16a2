"""A sequence classifier on an LSTM written with explicit equations.

Why not ``nn.LSTM``: MAML differentiates *through* the learner's gradient, and
cuDNN's fused LSTM kernel has no double backward on the GPU. The equations
below are plain tensor algebra, so every derivative of every order works on any
device, and under ``torch.func.vmap`` / ``functional_call``. They also take
*batched* weights, which is how :class:`metalearn.MetaLSTM` runs one generated
LSTM per task without a Python loop over tasks.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lstm_final_hidden(
    inputs: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run an LSTM over ``inputs`` and return its last hidden state.

    With gates ``[i, f, g, o]`` stacked in the rows of the weights (PyTorch's order)::

        i, f, g, o = split(W_ih x_t + W_hh h_{t-1} + b)
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(c_t)

    Args:
        inputs: ``[*B, L, E]`` sequences of ``L`` input vectors.
        weight_ih: ``[*W, 4H, E]``, weight_hh: ``[*W, 4H, H]``, bias: ``[*W, 4H]``, where ``*W`` is
            empty (one LSTM for all) or broadcasts against ``*B`` (e.g. ``[T, 1]`` for inputs
            ``[T, M, L, E]``: one LSTM per task).
        mask: ``[*B, L]`` booleans; where ``False`` (padding) the state is carried over unchanged.

    Returns:
        ``[*B, H]`` the hidden state after the last step.
    """
    hidden_size = weight_hh.shape[-1]
    projected = inputs @ weight_ih.transpose(-1, -2) + bias.unsqueeze(-2)  # [*B, L, 4H]
    recurrent = weight_hh.transpose(-1, -2)  # [*W, H, 4H]
    h = inputs.new_zeros(*projected.shape[:-2], hidden_size)
    c = torch.zeros_like(h)
    for t in range(inputs.shape[-2]):
        gates = projected[..., t, :] + (h.unsqueeze(-2) @ recurrent).squeeze(-2)
        i, f, g, o = gates.chunk(4, dim=-1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        if mask is None:
            h, c = h_next, c_next
        else:
            keep = mask[..., t, None]
            h, c = torch.where(keep, h_next, h), torch.where(keep, c_next, c)
    return h


class LSTMClassifier(nn.Module):
    """Embedding (for token ids) -> LSTM -> linear head: sequences ``[*B, L]`` -> logits
    ``[*B, C]``.

    Args:
        num_classes: ``C``, the number of output logits.
        hidden_size: ``H``, the LSTM's state size.
        vocab_size: if given, inputs are token ids ``[*B, L]`` (``0`` = padding, masked out)
            embedded in ``embedding_dim`` dimensions.
        embedding_dim: size of the token embeddings.
        input_size: if ``vocab_size`` is ``None``, inputs are feature vectors
            ``[*B, L, input_size]``.

    Parameters (names usable with ``torch.func.functional_call``): ``embedding.weight``,
    ``weight_ih [4H, E]``, ``weight_hh [4H, H]``, ``bias [4H]``, ``head.weight [C, H]``,
    ``head.bias [C]``.
    """

    def __init__(
        self,
        num_classes: int,
        hidden_size: int,
        *,
        vocab_size: int | None = None,
        embedding_dim: int = 16,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError(
                "give exactly one of vocab_size (token ids) or input_size (feature vectors)"
            )
        self.num_classes, self.hidden_size = num_classes, hidden_size
        self.vocab_size, self.input_size = vocab_size, input_size
        self.embedding = (
            nn.Embedding(vocab_size, embedding_dim, padding_idx=0) if vocab_size else None
        )
        width = embedding_dim if vocab_size else input_size
        assert width is not None  # checked above: an input size without a vocabulary
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, width).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(
            torch.empty(4 * hidden_size, hidden_size).uniform_(-bound, bound)
        )
        bias = torch.zeros(4 * hidden_size)
        bias[hidden_size : 2 * hidden_size] = 1.0  # forget gate starts open
        self.bias = nn.Parameter(bias)
        self.head = nn.Linear(hidden_size, num_classes)

    def check_sequences(self, x: torch.Tensor, name: str, batch_dims: int) -> None:
        """Raise ``ValueError`` naming ``name`` unless ``x`` holds sequences this model reads."""
        if self.vocab_size is not None:
            if x.dim() != batch_dims + 1 or x.dtype.is_floating_point or x.dtype == torch.bool:
                raise ValueError(
                    f"{name} must hold token ids of shape [{batch_dims} batch dims..., L] "
                    f"(integer), got shape {tuple(x.shape)} dtype {x.dtype}"
                )
            if x.numel() and (x.min() < 0 or x.max() >= self.vocab_size):
                raise ValueError(f"{name} holds token ids outside [0, {self.vocab_size})")
        elif x.dim() != batch_dims + 2 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name} must hold feature sequences [..., L, {self.input_size}] with "
                f"{batch_dims} batch dims, got shape {tuple(x.shape)} (wrong feature size?)"
            )

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input vectors ``[*B, L, E]`` and the padding mask ``[*B, L]`` (``None`` for feature
        inputs)."""
        if self.embedding is None:
            return x, None
        return self.embedding(x), x != 0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The LSTM's last hidden state ``[*B, H]``."""
        inputs, mask = self.embed(x)
        return lstm_final_hidden(inputs, self.weight_ih, self.weight_hh, self.bias, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[*B, C]``."""
        return self.head(self.features(x))
