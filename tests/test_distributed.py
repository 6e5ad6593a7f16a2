"""Data-parallel meta-training under ``torchrun``: two processes give one process's numbers.

The launched jobs run ``torchrun --standalone --nproc_per_node=2`` on CPU with gloo over the
loopback interface (no network needed), each in well under 20 s on two cores: MAML on
sinusoids, ProtoNet on digit episodes and a checkpointed MAML run resumed by both ranks
(``distributed_worker.py``), and the command line ``python -m metalearn.train``. Each is
compared with the same seed on one process with the whole meta-batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import metalearn as ml
from metalearn import distributed
from metalearn.recipes import main
from metalearn.tasks import Sinusoid

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # float32: reductions over 2 shards round differently from one over B tasks
STEPS, META_BATCH = 5, 4


def torchrun(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` on CPU from the repository root."""
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}}
    env.update(
        OMP_NUM_THREADS="1",  # one thread per process on a 2-core machine (torchrun's default)
        METALEARN_DEVICE="cpu",  # gloo, even where a GPU is
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback: works without a network
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    result = subprocess.run(
        [*command, "--nproc_per_node=2", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-4000:] + "\n" + result.stderr[-6000:]
    return result


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# -- without torchrun ---------------------------------------------------------------------


@pytest.mark.parametrize("num_tasks", [4, 5, 25])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_shards_of_all_ranks_are_the_meta_batch_in_order(num_tasks, world):
    batch = Sinusoid(seed=0).sample(num_tasks, k_shot=3, k_query=2)
    shards = [distributed.shard(batch, r, world) for r in range(world)]
    for whole, parts in zip(batch, zip(*shards)):
        assert torch.equal(torch.cat(parts), whole)
    sizes = [s.num_tasks for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_a_meta_batch_smaller_than_the_world_is_refused():
    with pytest.raises(ValueError, match="meta-batch of 2 tasks cannot be shared by 4"):
        distributed.shard_range(2, 0, 4)


def test_rank_generators_repeat_per_rank_and_differ_across_ranks():
    draw = lambda seed, rank: torch.rand(4, generator=distributed.rank_generator(seed, rank))
    assert torch.equal(draw(0, 1), draw(0, 1))
    assert not torch.equal(draw(0, 0), draw(0, 1))
    assert not torch.equal(draw(0, 0), draw(1, 0))


def test_without_torchrun_meta_train_stays_a_single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    torch.manual_seed(0)
    maml = ml.MAML(ml.MLP(1, [8], 1), F.mse_loss, inner_lr=0.01)
    optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3)
    ml.meta_train(maml, Sinusoid(5, 5, seed=0), 2, optimizer, meta_batch=3, progress=False)
    assert not dist.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert not distributed.launched() and not distributed.init()


# -- two processes against one ------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    """The worker's runs on one process (here) and on two (torchrun), same seeds."""
    import distributed_worker

    out = tmp_path_factory.mktemp("distributed")
    one = distributed_worker.run_all(out, STEPS, META_BATCH)
    job = torchrun("tests/distributed_worker.py", str(out), str(STEPS), str(META_BATCH))
    two = torch.load(out / "result-2.pt", weights_only=True)
    return {"one": one, "two": two, "job": job}


@pytest.mark.parametrize("name", ["maml_sinusoid", "protonet_digits", "maml_resumed"])
def test_two_processes_reach_the_parameters_of_one(runs, name):
    one, two = runs["one"][name], runs["two"][name]
    difference = max_difference(one["state"], two["state"])
    print(f"{name}: {STEPS} steps, meta-batch {META_BATCH}, max |1 - 2 processes| {difference:.2e}")
    assert difference < TOLERANCE, difference
    assert two["history"] == pytest.approx(one["history"], rel=1e-5)
    if name == "maml_resumed":  # resuming on both ranks continues the uninterrupted run
        uninterrupted = runs["one"]["maml_sinusoid"]
        assert max_difference(two["state"], uninterrupted["state"]) < TOLERANCE
        assert two["history"] == pytest.approx(uninterrupted["history"], rel=1e-5)


def test_a_nan_loss_on_one_rank_stops_every_rank_with_the_same_error(runs):
    assert runs["one"]["nan_on_last_rank"] == runs["two"]["nan_on_last_rank"]
    assert "the loss is nan at step 0" in runs["two"]["nan_on_last_rank"]["error"]


def test_only_rank_0_shows_progress(runs):
    summaries = runs["job"].stderr.count(f"maml_sinusoid: {STEPS} steps in")
    assert summaries == 1, runs["job"].stderr[-3000:]


def test_the_command_line_under_torchrun_equals_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_DEVICE", "cpu")
    args = ["maml.sinusoid", "--steps", "3", "--profile", "quick"]  # meta-batch 25: 12 + 13 tasks
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    job = torchrun("-m", "metalearn.train", *args, "--out", str(tmp_path / "two"))
    assert job.stdout.count("maml.sinusoid (quick profile)") == 1, job.stdout
    records = [json.loads((tmp_path / d / "record.json").read_text()) for d in ("one", "two")]
    assert [r["world_size"] for r in records] == [1, 2]
    assert records[1]["final_loss"] == pytest.approx(records[0]["final_loss"], rel=1e-5)
    models = [torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("one", "two")]
    difference = max_difference(*models)
    print(f"command line, 3 steps, meta-batch 25 on 2 processes: max |difference| {difference:.2e}")
    assert difference < TOLERANCE, difference
