"""The MAML paper's Omniglot protocol: binary images, the character split, rotation per
episode, the strided Conv4, the reference's loss scaling; reproduction runs and shipped models."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from omniglot_files import write_zip
from PIL import Image
from test_omniglot import alphabet_files

from metalearn import config, pretrained, reproduce
from metalearn.algorithms.lstm_meta_learner import LSTMMetaLearner
from metalearn.data import omniglot
from metalearn.data.omniglot import decode, load_omniglot, split_characters
from metalearn.losses import shot_scaled_cross_entropy
from metalearn.models import Conv4
from metalearn.tasks import EpisodeSampler


def one_bit_png() -> bytes:
    image = Image.new("1", (105, 105), 1)
    image.paste(0, (20, 30, 60, 41))  # a stroke
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_one_bit_drawing_is_resized_as_the_reference_code_does_binary():
    png = one_bit_png()
    image = decode(png)
    assert set(image.unique().tolist()) == {0, 255}  # binary, ink bright
    reference = Image.open(io.BytesIO(png)).resize((28, 28), Image.Resampling.NEAREST)
    expected = 255 - torch.frombuffer(
        bytearray(reference.convert("L").tobytes()), dtype=torch.uint8
    )
    assert torch.equal(image.flatten(), expected)


def test_the_character_split_keeps_the_reference_proportions():
    train, test = split_characters(1623, seed=1)
    assert (len(train), len(test)) == (1100, 423) and not set(train) & set(test)
    train, test = split_characters(242, seed=1)
    assert (len(train), len(test)) == (164, 63)
    assert split_characters(242, seed=1) == (train, test) != split_characters(242, seed=2)


def test_load_omniglot_by_characters_mixes_alphabets(folders, monkeypatch):
    data, _ = folders
    sets = {
        "images_background_small1": {"Greek": 10, "Latin": 10},
        "images_background_small2": {"Tagalog": 10, "Greek": 10},
    }
    md5s = {
        name: write_zip(data / f"{name}.zip", alphabet_files(name, a)) for name, a in sets.items()
    }
    monkeypatch.setattr(omniglot, "SMALL", md5s)
    train, test = load_omniglot(split="characters", seed=1, rotations=False)
    assert not set(train.characters) & set(test.characters)
    assert len(train.characters) + len(test.characters) < 30  # validation characters set aside
    assert test.alphabets & train.alphabets  # irrespective of alphabet
    with pytest.raises(ValueError, match="split must be one of"):
        load_omniglot(split="drawers")


def test_rotation_turns_each_class_of_an_episode_alike():
    images = torch.rand(40, 1, 6, 6)
    labels = torch.arange(40) % 4
    plain = EpisodeSampler(images, labels, 4, 2, 3, seed=0).sample_indices(
        1, torch.Generator().manual_seed(0)
    )[0][0]
    batch = EpisodeSampler(images, labels, 4, 2, 3, seed=0, rotate=True).sample(
        1, torch.Generator().manual_seed(0)
    )
    x = torch.cat([batch.support_x[0].view(4, 2, 1, 6, 6), batch.query_x[0].view(4, 3, 1, 6, 6)], 1)
    turns = []
    for c in range(4):
        original = images[plain[c]]
        matches = [
            k for k in range(4) if torch.equal(torch.rot90(original, k, dims=(-2, -1)), x[c])
        ]
        assert len(matches) == 1
        turns.append(matches[0])
    many = EpisodeSampler(images, labels, 4, 2, 3, seed=0, rotate=True).sample(50)
    assert not torch.equal(
        many.support_x, EpisodeSampler(images, labels, 4, 2, 3, seed=0).sample(50).support_x
    )
    with pytest.raises(ValueError, match="square images"):
        EpisodeSampler(torch.rand(40, 6), labels, 4, 2, 3, rotate=True)


def test_the_strided_conv4_halves_four_times_and_can_be_an_encoder():
    net = Conv4(1, 5, hidden=8, max_pool=False)
    x = torch.rand(3, 1, 28, 28)
    sizes = []
    h = x
    for block in net.features:
        h = block(h)
        sizes.append(h.shape[-1])
    assert sizes == [14, 7, 4, 2] and net(x).shape == (3, 5)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert Conv4(1, None, hidden=8, max_pool=False)(x).shape == (3, 8)


def test_the_shot_scaled_loss_makes_alpha_the_papers_step():
    """One inner step at rate alpha on the reference's loss = a step at N * alpha on the mean."""
    torch.manual_seed(0)
    n_way, k_shot = 5, 2
    logits_of = torch.nn.Linear(4, n_way)
    x, y = torch.randn(n_way * k_shot, 4), torch.arange(n_way).repeat_interleave(k_shot)
    scaled = torch.autograd.grad(shot_scaled_cross_entropy(logits_of(x), y), logits_of.weight)[0]
    mean = torch.autograd.grad(F.cross_entropy(logits_of(x), y), logits_of.weight)[0]
    torch.testing.assert_close(scaled, n_way * mean)
    summed_over_k = F.cross_entropy(logits_of(x), y, reduction="sum") / k_shot
    torch.testing.assert_close(shot_scaled_cross_entropy(logits_of(x), y), summed_over_k)


@pytest.mark.parametrize("method", ["fomaml", "lstm"])
def test_a_reproduction_run_writes_a_model_that_pretrained_loads(
    method, folders, monkeypatch, tmp_path
):
    data, _ = folders
    alphabets = {"Greek": 12, "Latin": 12}
    md5s = {
        "images_background_small1": write_zip(
            data / "images_background_small1.zip",
            alphabet_files("images_background_small1", alphabets, drawers=4),
        ),
        "images_background_small2": write_zip(
            data / "images_background_small2.zip",
            alphabet_files("images_background_small2", {"Tagalog": 12}, drawers=4),
        ),
    }
    monkeypatch.setattr(omniglot, "SMALL", md5s)
    monkeypatch.setitem(
        reproduce.RUNS,
        "tiny",
        reproduce.Run(
            method,
            5,
            1,
            meta_batch=2,
            meta_steps=2,
            inner_lr=0.4,
            inner_steps=1,
            eval_steps=2,
            hidden=4,
            grad_clip=0.25,
        ),
    )
    out = tmp_path / "out"
    argv = ["tiny", "--out", str(out), "--eval-tasks", "4", "--eval-queries", "2"]
    assert reproduce.main(argv) == 0
    record = json.loads((out / "tiny.json").read_text())
    assert record["steps"] == 2 and record["config"]["inner_lr"] == 0.4
    assert 0 <= record["results"]["accuracy"] <= 1 and record["results"]["eval_tasks"] == 4
    assert record["train_classes"] and all("/character" in c for c in record["train_classes"])
    for key in ("command", "commit", "seed", "seconds", "device", "data", "sha256"):
        assert key in record, key
    assert reproduce.main(argv) == 0  # a finished run resumes from its checkpoint: no training
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copyfile(out / f"tiny{suffix}", shipped / f"tiny{suffix}")
    monkeypatch.setattr(pretrained, "FOLDER", shipped)
    assert pretrained.names() == ["tiny"]
    learner = pretrained.load("tiny")
    assert learner.inner_steps == 2  # configured as evaluated
    assert learner.first_order if method == "fomaml" else isinstance(learner, LSTMMetaLearner)
    batch = reproduce.test_batches(
        reproduce.RUNS["tiny"], load_omniglot(split="characters", seed=1, rotations=False)[1], 2, 2
    )[0]
    assert learner.predict(*batch[:3]).shape == (2, 10, 5)
    state = torch.load(shipped / "tiny.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    with open(shipped / "tiny.pt", "ab") as file:
        file.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        pretrained.load("tiny")
    with pytest.raises(ValueError, match="shipped models"):
        pretrained.info("nothing")


def test_the_sinusoid_reproduction_records_its_mse(tmp_path):
    out = tmp_path / "out"
    argv = ["sinusoid-maml-10shot", "--steps", "5", "--out", str(out), "--eval-tasks", "20"]
    assert reproduce.main(argv) == 0
    record = json.loads((out / "sinusoid-maml-10shot.json").read_text())
    assert record["results"]["mse"] > 0 and record["results"]["k_query"] == 100
    assert record["config"]["task"] == "sinusoid" and record["train_classes"] == []


@pytest.mark.parametrize("name", ["navigation-maml", "navigation-maml-trpo"])
def test_the_navigation_reproduction_records_returns_and_loads_as_a_policy(
    name, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    argv = [name, "--steps", "2", "--out", str(out), "--eval-tasks", "3"]
    monkeypatch.setitem(
        reproduce.RUNS,
        name,
        dataclasses.replace(reproduce.RUNS[name], meta_batch=2, trajectories=2),
    )
    assert reproduce.main(argv) == 0
    record = json.loads((out / f"{name}.json").read_text())
    results = record["results"]
    assert len(results["return"]) == 4 and all(-200 < r < 0 for r in results["return"])
    assert results["eval_lrs"] == [0.5, 0.25, 0.25] and results["eval_trajectories"] == 40
    assert record["config"]["task"] == "navigation" and record["train_classes"] == []
    for suffix in (".pt", ".json"):
        shutil.copyfile(out / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    maml = pretrained.load(name)
    assert maml.inner_lr == 0.5 and maml.model.mean[0].in_features == 2
    again = reproduce.score_navigation(reproduce.RUNS[name], maml.model, 3)
    assert [r.mean for r in again] == pytest.approx(results["return"], abs=1e-4)


def test_the_controller_run_trains_what_chapter_6_2_trains_and_loads_it(tmp_path, monkeypatch):
    """``navigation-meta-lstm-controller`` is the chapter's own training call (seed, initial
    weights, episodes), scored by its return after 0-2 exploratory transitions."""
    from metalearn.rl.controller import MetaLSTMController, train_controller
    from metalearn.utils import seed_everything

    name, out = "navigation-meta-lstm-controller", tmp_path / "out"
    assert reproduce.main([name, "--steps", "3", "--out", str(out), "--eval-tasks", "3"]) == 0
    record = json.loads((out / f"{name}.json").read_text())
    assert record["config"]["task"] == "controller" and record["steps"] == 3
    assert len(record["results"]["return"]) == 3 and record["results"]["eval_tasks"] == 3
    run = reproduce.RUNS[name]
    seed_everything(0)  # as the chapter: the seed, then the controller
    controller = MetaLSTMController(hidden=run.hidden)
    train_controller(
        controller,
        3,
        torch.optim.Adam(controller.parameters(), run.outer_lr),
        meta_batch=run.meta_batch,
        max_prior_steps=run.prior_steps,
        seed=run.seed,
        env_options={"horizon": run.horizon},
        progress=False,
    )
    for suffix in (".pt", ".json"):
        shutil.copyfile(out / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    shipped = pretrained.load(name)
    for (key, a), b in zip(shipped.state_dict().items(), controller.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)
    again = reproduce.score_controller(shipped, 3)
    assert [r.mean for r in again] == pytest.approx(record["results"]["return"], abs=1e-5)


def test_the_quick_runs_differ_from_the_shipped_ones_in_the_budget_only():
    budget = {"meta_steps", "meta_batch", "outer_lr"}
    for name, run in reproduce.QUICK.items():
        shipped = reproduce.RUNS[name]
        changed = {
            field.name
            for field in dataclasses.fields(run)
            if getattr(run, field.name) != getattr(shipped, field.name)
        }
        if name == "omniglot-maml-5way-5shot":  # the quick profile tests its 1-shot MAML
            assert run == reproduce.QUICK["omniglot-maml-5way-1shot"]
            changed -= {"k_shot"}
        assert changed <= budget and run.meta_steps < shipped.meta_steps, (name, changed)
    images = config.EXPERIMENTS["omniglot.few_shot"]["quick"]  # chapter 6.1's quick settings
    maml = reproduce.QUICK["omniglot-maml-5way-1shot"]
    assert (maml.meta_steps, maml.meta_batch, maml.outer_lr) == (
        images["maml_meta_steps"][5, 1],
        images["meta_batch"][5],
        images["outer_lr"],
    )
    assert maml.inner_lr == images["inner_lr"][5] and maml.eval_steps == images["eval_steps"][5]
    first_order = reproduce.QUICK["omniglot-fomaml-5way-1shot"]
    assert first_order.inner_lr == images["fomaml_inner_lr"][5]
    assert first_order.outer_lr == images["fomaml_outer_lr"]
    protonet = reproduce.QUICK["omniglot-protonet-5way-1shot"]
    assert protonet.meta_steps == images["protonet_meta_steps"]
    robot = config.EXPERIMENTS["robot.maml"]["quick"]  # chapter 6.2's
    navigation = reproduce.QUICK["navigation-maml"]
    assert (navigation.meta_steps, navigation.outer_lr) == (robot["meta_steps"], robot["outer_lr"])
    assert navigation.inner_lr == robot["inner_lr"] and navigation.grad_clip == robot["grad_clip"]
    sinusoid = config.EXPERIMENTS["maml.sinusoid"]["quick"]  # chapter 5.1's
    assert reproduce.QUICK["sinusoid-maml-10shot"].meta_steps == sinusoid["meta_steps"]
