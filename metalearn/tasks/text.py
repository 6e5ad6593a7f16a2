"""A family of 3-way few-shot text classification tasks with per-task keyword rules.

The document's Meta-LSTM example ("a text classification task with 3 classes")
made concrete and offline. Every "sentence" is a sequence of token ids:

* token ``0`` is padding; tokens ``1 .. num_filler`` are filler words that carry
  no label information and appear in every class;
* the remaining ``2 * keywords_per_split`` tokens are *keywords*, split in two
  disjoint halves: meta-training tasks draw their rules from the first half,
  meta-test tasks from the second, so no meta-test rule was ever seen in
  meta-training.

A task is a rule: it draws ``n_way * keywords_per_class`` distinct keywords
from its split and gives each class ``keywords_per_class`` of them. A sentence of
class ``c`` has a random length in ``[min_len, max_len]``, random filler words,
and ``keyword_hits`` keyword occurrences drawn from class ``c``'s keywords at
random positions; it is padded with ``0`` to ``max_len``. The same keyword means
different classes in different tasks, so only the support set says which is which.
"""

from __future__ import annotations

import torch

from metalearn.checks import check_generator, check_int, check_labels, check_seed
from metalearn.core import TaskBatch

SPLITS = ("train", "test")


class TextTasks:
    """Seeded sampler of 3-way few-shot text tasks.

    Args:
        split: ``"train"`` (meta-training rules) or ``"test"`` (held-out rules).
        n_way: classes per task (the document's example has 3).
        num_filler: filler words, ids ``1 .. num_filler``.
        keywords_per_split: keywords available to each split.
        keywords_per_class: keywords marking each class within a task.
        keyword_hits: keyword occurrences in each sentence.
        k_shot: support sentences per class.
        k_query: query sentences per class.
        min_len, max_len: sentence length range (before padding to ``max_len``).
        seed: seed of this sampler's private generator.

    Example:
        >>> tasks = TextTasks("train", k_shot=5, k_query=5, seed=0)
        >>> batch = tasks.sample(4)
        >>> batch.support_x.shape, batch.support_x.dtype   # [T, N*K, L] token ids
        (torch.Size([4, 15, 10]), torch.int64)
    """

    def __init__(
        self,
        split: str = "train",
        *,
        n_way: int = 3,
        k_shot: int = 5,
        k_query: int = 5,
        num_filler: int = 20,
        keywords_per_split: int = 24,
        keywords_per_class: int = 1,
        keyword_hits: int = 2,
        min_len: int = 5,
        max_len: int = 10,
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        n_way = check_int("n_way", n_way, minimum=2)
        self.k_shot = check_int("k_shot", k_shot, minimum=1)
        self.k_query = check_int("k_query", k_query, minimum=1)
        num_filler = check_int("num_filler", num_filler, minimum=1)
        keywords_per_split = check_int("keywords_per_split", keywords_per_split, minimum=1)
        keywords_per_class = check_int("keywords_per_class", keywords_per_class, minimum=1)
        keyword_hits = check_int("keyword_hits", keyword_hits, minimum=1)
        min_len = check_int("min_len", min_len, minimum=1)
        max_len = check_int("max_len", max_len, minimum=1)
        seed = check_seed("seed", seed)
        if n_way * keywords_per_class > keywords_per_split:
            raise ValueError(
                f"keywords_per_split={keywords_per_split} is too small for n_way * "
                f"keywords_per_class={n_way * keywords_per_class} distinct keywords per task"
            )
        if not 1 <= keyword_hits <= min_len <= max_len:
            raise ValueError(
                "need 1 <= keyword_hits <= min_len <= max_len, "
                f"got {keyword_hits}, {min_len}, {max_len}"
            )
        self.split, self.n_way = split, n_way
        self.num_filler, self.keywords_per_split = num_filler, keywords_per_split
        self.keywords_per_class, self.keyword_hits = keywords_per_class, keyword_hits
        self.min_len, self.max_len = min_len, max_len
        first = 1 + num_filler + (0 if split == "train" else keywords_per_split)
        self.keyword_ids = torch.arange(first, first + keywords_per_split)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def vocab_size(self) -> int:
        """Number of token ids (padding, filler, both keyword halves)."""
        return 1 + self.num_filler + 2 * self.keywords_per_split

    def sample_rules(
        self, num_tasks: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Keywords of each class of ``num_tasks`` new tasks: ``[T, n_way, keywords_per_class]``
        token ids."""
        check_int("num_tasks", num_tasks, minimum=1)
        generator = check_generator(generator) or self.generator
        draw = torch.rand(num_tasks, self.keywords_per_split, generator=generator).argsort(dim=1)
        chosen = self.keyword_ids[draw[:, : self.n_way * self.keywords_per_class]]
        return chosen.view(num_tasks, self.n_way, self.keywords_per_class)

    def sentences(
        self, rules: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Sentences of the given classes under ``rules [T, N, kpc]``: ``labels [T, M]`` ->
        ``[T, M, max_len]``.

        Raises:
            ValueError: naming ``rules`` or ``labels`` when the shapes disagree or a label is
                outside ``0 .. n_way - 1``.
        """
        expected = (self.n_way, self.keywords_per_class)
        if not isinstance(rules, torch.Tensor) or rules.dim() != 3 or rules.shape[1:] != expected:
            shape = list(rules.shape) if isinstance(rules, torch.Tensor) else type(rules).__name__
            raise ValueError(
                f"rules must have shape [T, {expected[0]}, {expected[1]}], got {shape}"
            )
        if not isinstance(labels, torch.Tensor) or labels.dim() != 2:
            shape = (
                list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            )
            raise ValueError(f"labels must have shape [T, M], got {shape}")
        check_labels(labels, "labels", self.n_way, shape=(rules.shape[0], labels.shape[1]))
        num_tasks, count = labels.shape
        g, size = check_generator(generator) or self.generator, (num_tasks, count)
        words = torch.randint(1, self.num_filler + 1, (*size, self.max_len), generator=g)
        lengths = torch.randint(self.min_len, self.max_len + 1, size, generator=g)
        # distinct keyword positions inside each sentence's length
        order = torch.rand(*size, self.max_len, generator=g) + (
            torch.arange(self.max_len) >= lengths[..., None]
        )
        positions = order.argsort(dim=-1)[..., : self.keyword_hits]
        class_words = rules[torch.arange(num_tasks)[:, None], labels]  # [T, M, kpc]
        pick = torch.randint(0, self.keywords_per_class, (*size, self.keyword_hits), generator=g)
        words.scatter_(-1, positions, class_words.gather(-1, pick))
        return words.masked_fill(torch.arange(self.max_len) >= lengths[..., None], 0)

    def balanced_labels(
        self, num_tasks: int, per_class: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``per_class`` examples of each class, shuffled within each task:
        ``[T, n_way * per_class]``."""
        check_int("num_tasks", num_tasks, minimum=1)
        check_int("per_class", per_class, minimum=1)
        labels = torch.arange(self.n_way).repeat_interleave(per_class).expand(num_tasks, -1)
        generator = check_generator(generator) or self.generator
        shuffle = torch.rand(labels.shape, generator=generator).argsort(dim=1)
        return labels.gather(1, shuffle)

    def sample(
        self,
        num_tasks: int,
        generator: torch.Generator | None = None,
        *,
        k_shot: int | None = None,
        k_query: int | None = None,
    ) -> TaskBatch:
        """``num_tasks`` new tasks with ``k_shot`` support and ``k_query`` query sentences per
        class (the sampler's sizes unless given here).

        Returns:
            ``TaskBatch`` with ``support_x [T, N*k_shot, max_len]`` and
            ``query_x [T, N*k_query, max_len]`` token ids (``int64``, ``0`` = padding) and labels
            ``[T, N*K]`` in ``0 .. n_way - 1``.
        """
        check_int("num_tasks", num_tasks, minimum=1)
        k_shot = self.k_shot if k_shot is None else check_int("k_shot", k_shot, minimum=1)
        k_query = self.k_query if k_query is None else check_int("k_query", k_query, minimum=1)
        g = check_generator(generator) or self.generator
        rules = self.sample_rules(num_tasks, g)
        support_y = self.balanced_labels(num_tasks, k_shot, g)
        query_y = self.balanced_labels(num_tasks, k_query, g)
        return TaskBatch(
            self.sentences(rules, support_y, g),
            support_y,
            self.sentences(rules, query_y, g),
            query_y,
        )
