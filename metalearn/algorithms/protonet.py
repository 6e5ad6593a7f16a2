"""Prototypical networks (Snell et al., 2017): classify by distance to class means in a learned
space.

An encoder ``f`` embeds every example. Each class ``c`` of a task gets a prototype,
the mean embedding of its support examples,

    p_c = (1 / |S_c|) * sum_{x in S_c} f(x),

and a query ``x`` gets the logits ``-||f(x) - p_c||^2`` (squared Euclidean distance), so
``softmax`` over classes is its predicted distribution. Adapting to a task is just
averaging -- no gradient steps -- and meta-training fits ``f`` so that this works:
cross-entropy of the query logits, averaged over tasks.

FS-Mol's strongest baseline is a prototypical network over a GNN + fingerprint encoder
with a Mahalanobis distance; this one is Snell et al.'s original (Euclidean) form.

Example::

    protonet = ProtoNet(MLP(2048, [512], 128), num_classes=2)
    loss = protonet.meta_loss(support_x, support_y, query_x, query_y)   # support_x [T, S, 2048]
    logits = protonet.predict(support_x, support_y, query_x)            # [T, Q, 2]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.checks import call_model, check_labels, check_model_device
from metalearn.core import check_task_batch


class ProtoNet(nn.Module):
    """A prototypical network around ``encoder`` (``[N, ...] -> [N, E]``) for
    ``num_classes``-way tasks.

    Labels are class indices ``0 .. num_classes - 1``; every class must appear in every support set.
    Shapes: ``support_x [T, S, ...]``, ``support_y [T, S]``, ``query_x [T, Q, ...]``,
    ``query_y [T, Q]`` (integers; ``-100`` or ``-1`` are refused, not ignored). An encoder
    without parameters (``nn.Identity()``) gives a nearest-class-mean classifier in input
    space; it predicts, but has nothing to meta-train.
    """

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder must be an nn.Module, got {type(encoder).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.encoder = encoder
        self.num_classes = num_classes

    def embed(self, x: Tensor, name: str = "x") -> Tensor:
        """``[T, N, ...] -> [T, N, E]``: the encoder applied to all examples of all tasks at
        once (``name`` names ``x`` in errors)."""
        embeddings = call_model(self.encoder, x.flatten(0, 1), name)
        if embeddings.dim() != 2 or len(embeddings) != x.shape[0] * x.shape[1]:
            raise ValueError(
                f"the encoder must map [N, ...] to embeddings [N, E]; on {name} of shape "
                f"{list(x.shape)} it returned {list(embeddings.shape)}"
            )
        return embeddings.unflatten(0, x.shape[:2])

    def prototypes(self, support_embeddings: Tensor, support_y: Tensor) -> Tensor:
        """Class means: ``[T, S, E]``, ``[T, S]`` -> ``[T, C, E]``.

        Raises:
            ValueError: a label is outside ``0 .. num_classes - 1``, or a class has no support
                example.
        """
        check_labels(support_y, "support_y", self.num_classes, shape=support_embeddings.shape[:2])
        one_hot = F.one_hot(support_y, self.num_classes).to(support_embeddings.dtype)  # [T, S, C]
        counts = one_hot.sum(dim=1)  # [T, C]
        if (counts == 0).any():
            raise ValueError(
                "support_y: every class needs at least one support example in every task"
            )
        return one_hot.transpose(1, 2) @ support_embeddings / counts[..., None]

    def forward(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Query logits ``[T, Q, C]`` = minus the squared distances to the prototypes."""
        check_task_batch(support_x, support_y, query_x, num_classes=self.num_classes)
        check_model_device(self.encoder, support_x=support_x, query_x=query_x)
        prototypes = self.prototypes(self.embed(support_x, "support_x"), support_y)  # [T, C, E]
        query = self.embed(query_x, "query_x")  # [T, Q, E]
        return -(query[:, :, None, :] - prototypes[:, None, :, :]).pow(2).sum(dim=-1)

    def meta_loss(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor
    ) -> Tensor:
        """Cross-entropy of the query logits, averaged over all query examples of all tasks
        (a scalar). ``query_y [T, Q]`` integer labels in ``0 .. num_classes - 1``."""
        check_task_batch(support_x, support_y, query_x, query_y, num_classes=self.num_classes)
        logits = self(support_x, support_y, query_x)
        return F.cross_entropy(logits.flatten(0, 1), query_y.flatten())

    def predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Detached query logits ``[T, Q, C]``."""
        with torch.no_grad():
            return self(support_x, support_y, query_x)
