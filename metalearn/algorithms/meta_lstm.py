"""The document's Meta-LSTM, made to learn: an LSTM meta-model writes a task's LSTM classifier.

Model-based meta-learning (基于模型的元学习): a *meta-model* (元模型), here an LSTM,
reads a description of the task and outputs the parameters of a *task-specific*
LSTM (特定模型) that classifies that task's sequences. This is a hypernetwork
(Ha et al., 2017) whose generator is recurrent. Not to be confused with
Ravi & Larochelle's LSTM optimiser (:class:`metalearn.LSTMMetaLearner`).

What is generated. The task description is the labelled support set. Each
support sentence is encoded by the base LSTM into ``e_i`` (``[H]``); the pair
``(e_i, y_i)`` enters the meta-LSTM as ``onehot(y_i) ⊗ e_i`` (the features placed
in their class's slot) concatenated with ``onehot(y_i)``. From the meta-LSTM's
final state ``z = [h_S, c_S]`` (``[2M]``) linear generators produce, per task,

* gate scales and shifts ``γ, β`` (``[4H]`` each), giving the task LSTM's weights
  ``W_ih = diag(γ) W⁰_ih``, ``W_hh = diag(γ) W⁰_hh``, ``b = γ ⊙ b⁰ + β``
  (a rank-structured family around meta-learned base weights ``W⁰``), and
* the whole output head ``W_out [C, H]``, ``b_out [C]`` (added to a meta-learned base head).

Generating all ``4H(E + H + 1)`` LSTM weights from ``z`` would need a generator
with ``M`` times as many parameters and learns slowly from a few tasks; the
scaled rows keep "the meta-model outputs the task LSTM's parameters" while
staying cheap. The generated weights are used functionally (plain tensors in
:func:`lstm_final_hidden`, never wrapped in ``nn.Parameter``), so the
meta-gradient reaches every meta-parameter, and all tasks run at once.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from metalearn.checks import check_int, check_model_device
from metalearn.core import check_task_batch
from metalearn.models.lstm_classifier import LSTMClassifier, lstm_final_hidden


def check_episode(
    n_way: int | None,
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor | None = None,
    *,
    check_sequences: Callable[..., None] | None = None,
) -> None:
    """:func:`~metalearn.core.check_task_batch` for classification episodes of ``n_way``
    classes, whose inputs are checked by ``check_sequences(x, name, batch_dims=2)`` when given
    (:meth:`LSTMClassifier.check_sequences`: support and query may differ in length)."""
    check_task_batch(
        support_x,
        support_y,
        query_x,
        query_y,
        num_classes=n_way,
        class_labels=True,
        same_example_shape=check_sequences is None,
    )
    if check_sequences is not None:
        check_sequences(support_x, "support_x", batch_dims=2)
        check_sequences(query_x, "query_x", batch_dims=2)


class MetaLSTM(nn.Module):
    """An LSTM meta-model that generates each task's LSTM classifier from its support set.

    Args:
        n_way: classes per task ``C``.
        hidden_size: ``H``, the task LSTM's state size (also the support encoder's).
        meta_hidden_size: ``M``, the meta-LSTM's state size.
        vocab_size, embedding_dim, input_size: the inputs, as in :class:`LSTMClassifier`.

    Shapes: ``support_x [T, S, L]`` token ids (or ``[T, S, L, D]`` features), ``support_y [T, S]``,
    ``query_x [T, Q, L]``; :meth:`predict` returns logits ``[T, Q, C]``.

    Example:
        >>> model = MetaLSTM(n_way=3, hidden_size=32, vocab_size=69)
        >>> loss = model.meta_loss(*TextTasks("train").sample(8, 5, 5))   # then loss.backward()
    """

    def __init__(
        self,
        n_way: int,
        hidden_size: int = 32,
        meta_hidden_size: int = 128,
        *,
        vocab_size: int | None = None,
        embedding_dim: int = 16,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        n_way = check_int("n_way", n_way, minimum=2)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        meta_hidden_size = check_int("meta_hidden_size", meta_hidden_size, minimum=1)
        self.n_way, self.hidden_size = n_way, hidden_size
        # embedding, base LSTM weights W⁰ and base head (the generated head is added to it)
        self.base = LSTMClassifier(
            n_way,
            hidden_size,
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            input_size=input_size,
        )
        self.meta_lstm = nn.LSTM(n_way * hidden_size + n_way, meta_hidden_size, batch_first=True)
        self.to_gates = nn.Linear(2 * meta_hidden_size, 2 * 4 * hidden_size)  # γ - 1 and β
        self.to_head = nn.Linear(2 * meta_hidden_size, n_way * hidden_size + n_way)
        with torch.no_grad():  # start near the base LSTM: γ ≈ 1, β ≈ 0
            self.to_gates.weight.mul_(0.1)
            self.to_gates.bias.zero_()

    def encode(self, support_x: torch.Tensor) -> torch.Tensor:
        """Base-LSTM features of the support sentences: ``[T, S, L]`` -> ``[T, S, H]``."""
        return self.base.features(support_x)

    def task_embedding(self, support_x: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        """The meta-LSTM's final state ``z = [h_S, c_S]`` after reading the support pairs:
        ``[T, 2M]``.

        The cell state ``c_S`` is the LSTM's memory, a gated *sum* over the pairs: handing it to the
        generators (not only the squashed ``h_S``) gives them a linear path to per-class summaries.
        """
        onehot = F.one_hot(support_y, self.n_way).to(self.base.weight_ih.dtype)  # [T, S, C]
        features = self.encode(support_x)  # [T, S, H]
        pairs = torch.cat([(onehot[..., None] * features[..., None, :]).flatten(2), onehot], dim=-1)
        _, (h_n, c_n) = self.meta_lstm(pairs)
        return torch.cat([h_n[-1], c_n[-1]], dim=-1)

    def generate(self, support_x: torch.Tensor, support_y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The task-specific LSTM classifiers' weights, one set per task.

        Returns:
            ``weight_ih [T, 4H, E]``, ``weight_hh [T, 4H, H]``, ``bias [T, 4H]``,
            ``head_weight [T, C, H]``, ``head_bias [T, C]`` (plain tensors in the autograd graph).
        """
        check_episode(
            self.n_way, support_x, support_y, support_x, check_sequences=self.base.check_sequences
        )
        z = self.task_embedding(support_x, support_y)
        scale, shift = self.to_gates(z).chunk(2, dim=-1)
        gamma = 1.0 + scale  # [T, 4H]
        head = self.to_head(z)
        num_tasks, size = z.shape[0], self.n_way * self.hidden_size
        return {
            "weight_ih": gamma[..., None] * self.base.weight_ih,
            "weight_hh": gamma[..., None] * self.base.weight_hh,
            "bias": gamma * self.base.bias + shift,
            "head_weight": self.base.head.weight
            + head[:, :size].view(num_tasks, self.n_way, self.hidden_size),
            "head_bias": self.base.head.bias + head[:, size:],
        }

    def classify(self, weights: dict[str, torch.Tensor], query_x: torch.Tensor) -> torch.Tensor:
        """Run each task's generated LSTM on its queries: ``[T, Q, L]`` -> logits ``[T, Q, C]``."""
        inputs, mask = self.base.embed(query_x)
        per_task = {name: w.unsqueeze(1) for name, w in weights.items()}  # broadcast over queries
        h = lstm_final_hidden(
            inputs, per_task["weight_ih"], per_task["weight_hh"], per_task["bias"], mask
        )
        return (h.unsqueeze(-2) @ per_task["head_weight"].transpose(-1, -2)).squeeze(-2) + per_task[
            "head_bias"
        ]

    def predict(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[T, Q, C]`` of the generated classifiers (detached)."""
        check_episode(
            self.n_way, support_x, support_y, query_x, check_sequences=self.base.check_sequences
        )
        check_model_device(self, support_x=support_x, query_x=query_x)
        with torch.no_grad():
            return self.classify(self.generate(support_x, support_y), query_x)

    def meta_loss(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
    ) -> torch.Tensor:
        """Mean query cross-entropy of the generated classifiers (a scalar)."""
        check_episode(
            self.n_way,
            support_x,
            support_y,
            query_x,
            query_y,
            check_sequences=self.base.check_sequences,
        )
        check_model_device(self, support_x=support_x, query_x=query_x)
        logits = self.classify(self.generate(support_x, support_y), query_x)
        return F.cross_entropy(logits.flatten(0, 1), query_y.flatten())
