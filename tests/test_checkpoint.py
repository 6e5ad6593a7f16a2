"""``meta_train(checkpoint=...)``: periodic, atomic checkpoints and an exact resume.

An interrupted run, resumed from its checkpoint, ends with the very numbers of an
uninterrupted run (history, parameters, optimizer state, random streams); it loses at most
one checkpoint interval; an interruption while saving leaves the previous checkpoint whole;
a damaged or foreign checkpoint is refused naming the file.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sources import Calls

import metalearn as ml
from metalearn import train as train_module
from metalearn.tasks import Sinusoid


def make_learner(seed: int = 0, lr: float = 1e-2, hidden: int = 16):
    torch.manual_seed(seed)
    maml = ml.MAML(ml.MLP(1, [hidden], 1), F.mse_loss, inner_lr=0.05)
    return maml, torch.optim.Adam(maml.parameters(), lr=lr)


def make_sampler(interrupt_at: int | None = None):
    """Sinusoid tasks from the family's own generator, plus noise from the global Python,
    NumPy and torch generators; raises KeyboardInterrupt on call number ``interrupt_at``."""
    family = Sinusoid(seed=3)
    calls = [0]

    def sample_batch() -> ml.TaskBatch:
        if calls[0] == interrupt_at:
            raise KeyboardInterrupt
        calls[0] += 1
        batch = family.sample(4, k_shot=5, k_query=5)
        noise = 0.01 * torch.randn(batch.support_y.shape) + 0.01 * random.random()
        return batch._replace(support_y=batch.support_y + noise + 0.01 * np.random.rand())

    return Calls(sample_batch)


def run(path, steps, interrupt_at=None, seed=0, global_seed=7, lr=1e-2, **kwargs):
    learner, optimizer = make_learner(seed, lr)
    ml.seed_everything(global_seed)
    history = ml.meta_train(
        learner,
        make_sampler(interrupt_at),
        steps,
        optimizer,
        meta_batch=4,
        progress=False,
        checkpoint=path,
        **kwargs,
    )
    return learner, optimizer, history


def assert_same_state(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight, straight_opt, straight_history = run(None, 8)
    path = tmp_path / "maml.pt"
    with pytest.raises(KeyboardInterrupt):
        run(path, 8, interrupt_at=5, checkpoint_every=0.0)
    assert torch.load(path, weights_only=True)["step"] == 5
    # a fresh process: other initial weights, other global random state
    resumed, resumed_opt, history = run(path, 8, seed=99, global_seed=123)
    assert history == straight_history and len(history) == 8
    assert_same_state(resumed, straight)
    for x, y in zip(resumed_opt.state.values(), straight_opt.state.values()):
        assert all(torch.equal(x[key], y[key]) for key in x)


def test_random_streams_continue_as_in_an_uninterrupted_run(tmp_path):
    run(None, 4)
    expected = (torch.rand(3).tolist(), random.random(), np.random.rand())
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        run(path, 4, interrupt_at=2, checkpoint_every=0.0)
    run(path, 4, global_seed=5)
    assert (torch.rand(3).tolist(), random.random(), np.random.rand()) == expected


def test_an_interruption_loses_at_most_one_interval(tmp_path, monkeypatch):
    clock = [0.0]  # every sampled batch takes one "second"
    monkeypatch.setattr(train_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    sampler = make_sampler(interrupt_at=7)

    def one_second_per_step():
        clock[0] += 1.0
        return sampler.sample(4)

    learner, optimizer = make_learner()
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        ml.meta_train(
            learner,
            Calls(one_second_per_step),
            20,
            optimizer,
            meta_batch=4,
            progress=False,
            checkpoint=path,
            checkpoint_every=3.0,
        )
    saved = torch.load(path, weights_only=True)
    assert 7 - 3 <= saved["step"] <= 7 and len(saved["history"]) == saved["step"]


def test_an_interruption_while_saving_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    run(path, 3)
    before = path.read_bytes()
    real_save = torch.save

    def killed_midway(state, file):
        real_save(state, file)
        file.truncate(100)  # half-written ...
        raise KeyboardInterrupt  # ... when the kernel dies

    monkeypatch.setattr(train_module.torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        run(path, 6, checkpoint_every=0.0)
    monkeypatch.undo()
    assert path.read_bytes() == before  # untouched: step 3, loadable
    assert torch.load(path, weights_only=True)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"",
        lambda data: data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:],
    ],
)
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage):
    path = tmp_path / "run.pt"
    run(path, 2)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=r"run\.pt.*delete it to start afresh"):
        run(path, 4)


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match=r"other\.pt.* is not a meta_train checkpoint"):
        run(path, 2)


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path(EXECUTED),))


EXECUTED = "payload-ran"


def test_a_checkpoint_is_loaded_without_running_code_from_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "run.pt"
    run(path, 2)
    state = torch.load(path, weights_only=True)
    state["extra"] = Payload()
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"run\.pt.*cannot be read"):
        run(path, 4)
    assert not (tmp_path / EXECUTED).exists()


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    _, _, history = run(path, 3)
    with pytest.raises(ValueError, match=r"lr=0\.01.*lr=0\.5"):
        run(path, 6, lr=0.5)  # loading would silently bring back lr=0.01
    with pytest.raises(ValueError, match="at step 3 but steps=2"):
        run(path, 2)
    other, optimizer = make_learner(hidden=8)
    with pytest.raises(ValueError, match="does not fit this learner"):
        ml.meta_train(
            other, make_sampler(), 6, optimizer, meta_batch=4, progress=False, checkpoint=path
        )
    # the refused load changed nothing: the same checkpoint still resumes
    assert run(path, 3)[2] == history


def test_a_finished_run_returns_its_history_and_weights_without_training(tmp_path):
    path = tmp_path / "run.pt"
    trained, _, history = run(path, 4)
    learner, optimizer = make_learner(seed=5)

    def must_not_be_called():
        raise AssertionError("sampled a batch")

    again = ml.meta_train(
        learner,
        Calls(must_not_be_called),
        4,
        optimizer,
        meta_batch=4,
        progress=False,
        checkpoint=str(path),
    )
    assert again == history
    assert_same_state(learner, trained)


def test_extending_a_finished_run_equals_training_longer(tmp_path):
    *_, straight = run(None, 7)
    path = tmp_path / "run.pt"
    run(path, 4)
    *_, extended = run(path, 7, seed=3, global_seed=3)
    assert extended == straight


def test_checkpoint_arguments_are_checked(tmp_path):
    learner, optimizer = make_learner()
    for every in (math.nan, math.inf, -1.0, True):
        with pytest.raises(ValueError, match="checkpoint_every"):
            ml.meta_train(
                learner,
                make_sampler(),
                2,
                optimizer,
                meta_batch=4,
                progress=False,
                checkpoint=tmp_path / "a.pt",
                checkpoint_every=every,
            )
    with pytest.raises(ValueError, match="checkpoint must be a file path"):
        ml.meta_train(
            learner, make_sampler(), 2, optimizer, meta_batch=4, progress=False, checkpoint=tmp_path
        )

    class NotAModule:
        def meta_loss(self, *batch):
            return learner.meta_loss(*batch)

    with pytest.raises(ValueError, match="checkpoint needs a learner that is an nn.Module"):
        ml.meta_train(
            NotAModule(),
            make_sampler(),
            2,
            optimizer,
            meta_batch=4,
            progress=False,
            checkpoint=tmp_path / "b.pt",
        )


def test_a_sampler_with_state_dict_is_saved_and_restored(tmp_path):
    class CountingSampler:
        def __init__(self):
            self.family, self.count = Sinusoid(seed=1), 0

        def sample(self, num_tasks, generator=None):
            self.count += 1
            return self.family.sample(num_tasks, k_shot=3, k_query=3)

        def state_dict(self):
            return {"count": self.count}

        def load_state_dict(self, state):
            self.count = state["count"]

    path = tmp_path / "run.pt"
    learner, optimizer = make_learner()
    options = dict(meta_batch=2, progress=False, checkpoint=path)
    ml.meta_train(learner, CountingSampler(), 3, optimizer, **options)
    sampler = CountingSampler()
    learner, optimizer = make_learner()
    ml.meta_train(learner, sampler, 5, optimizer, **options)
    assert sampler.count == 5


def test_generators_that_cannot_be_found_again_are_reported(tmp_path):
    path = tmp_path / "run.pt"
    run(path, 2)
    learner, optimizer = make_learner()
    tasks = Sinusoid(seed=3)  # the same family under another name: not found again

    def sample_batch() -> ml.TaskBatch:
        return tasks.sample(4, k_shot=5, k_query=5)

    with pytest.warns(UserWarning, match=r"source\.fn\.family\.generator"):
        ml.meta_train(
            learner,
            Calls(sample_batch),
            3,
            optimizer,
            meta_batch=4,
            progress=False,
            checkpoint=path,
        )


def test_the_checkpoint_holds_what_the_docstring_promises(tmp_path):
    path = tmp_path / "nested" / "run.pt"  # the folder is created
    run(path, 2)
    state = torch.load(path, weights_only=True)
    assert {"learner", "optimizer", "step", "history", "rng", "generators"} <= state.keys()
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert list(state["generators"]) == ["source.fn.family.generator"]
    assert state["step"] == 2 and len(state["history"]) == 2
