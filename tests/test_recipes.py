"""``metalearn.recipes`` and ``python -m metalearn.train EXPERIMENT`` on one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import metalearn as ml
from metalearn import config, recipes
from metalearn.recipes import main

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_every_recipe_is_an_experiment_of_the_config():
    assert "maml.sinusoid" in recipes.RECIPES and "omniglot.few_shot" in recipes.RECIPES
    assert set(recipes.RECIPES) <= set(config.EXPERIMENTS)


@pytest.mark.parametrize("experiment", sorted(recipes.RECIPES))
def test_each_recipe_builds_a_run_that_meta_trains(experiment, monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, "quick")
    if experiment == "omniglot.few_shot":
        if not (SHARED_DATA / "omniglot" / "images_background_small1.zip").is_file():
            pytest.skip("shared Omniglot data absent (the recipe would download it)")
        monkeypatch.setenv("METALEARN_DATA_DIR", str(SHARED_DATA))
    if experiment == "fsmol.protonet":
        pytest.importorskip("rdkit")
        if not (SHARED_DATA / "fsmol" / "fsmol_subset.csv.gz").is_file():
            pytest.skip("shared FS-Mol subset absent (the recipe would download FS-Mol)")
        monkeypatch.setenv("METALEARN_DATA_DIR", str(SHARED_DATA))
    run = recipes.build(experiment, seed=0, device=torch.device("cpu"))
    assert run.steps == config.EXPERIMENTS[experiment]["quick"].get("meta_steps", run.steps)
    history = ml.meta_train(
        run.learner,
        run.source,
        2,
        run.optimizer,
        meta_batch=run.meta_batch,
        grad_clip=run.grad_clip,
        progress=False,
    )
    assert len(history) == 2 and all(map(torch.isfinite, torch.tensor(history)))
    assert isinstance(run.source, ml.TaskSource)


def test_the_command_line_writes_the_model_and_a_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METALEARN_DEVICE", "cpu")
    out = tmp_path / "run"
    assert main(["maml.sinusoid", "--steps", "3", "--seed", "4", "--out", str(out)]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["experiment"] == "maml.sinusoid" and record["profile"] == config.profile()
    assert (record["steps"], record["seed"], record["world_size"]) == (3, 4, 1)
    assert record["seconds"] > 0 and record["final_loss"] > 0 and not record["resumed"]
    assert record["command"].startswith("python -m metalearn.train maml.sinusoid --steps 3")
    learner = recipes.build("maml.sinusoid", seed=0, device=torch.device("cpu")).learner
    learner.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert "maml.sinusoid (quick profile): 3 steps" in capsys.readouterr().out


def test_the_same_command_resumes_an_interrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_DEVICE", "cpu")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    main(["maml.sinusoid", "--steps", "4", "--out", str(whole)])
    main(["maml.sinusoid", "--steps", "2", "--out", str(parts)])  # "interrupted" at step 2
    main(["maml.sinusoid", "--steps", "4", "--out", str(parts)])
    assert json.loads((parts / "record.json").read_text())["resumed"]
    a, b = (torch.load(d / "model.pt", weights_only=True) for d in (whole, parts))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_unknown_experiment_is_an_error_listing_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["limits.data"])  # in the config, but it does not meta-train
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "unknown experiment 'limits.data'" in error and "maml.sinusoid" in error


def test_settings_of_another_profile_than_the_active_one(monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, "full")
    quick = config.settings("fsmol.protonet", "quick")
    assert quick.profile == "quick" and quick.meta_steps == 300
    assert config.settings("fsmol.protonet").meta_steps == 5000  # the active profile
    with pytest.raises(ValueError, match="profile_name"):
        config.settings("fsmol.protonet", "fast")
