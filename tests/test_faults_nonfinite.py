"""Class 5 of the fault review: NaN and infinity never slip through as a normal result.

Meta-training stops before an update whose gradient is not finite (with or without clipping),
NaN predictions score NaN (never "100% accurate"), and every float setting is checked for
finiteness as well as for its range.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sources import Calls
from torch import nn

import metalearn as ml
from metalearn.envs import Navigation2D
from metalearn.models.policy import GaussianMLPPolicy
from metalearn.rl.controller import MetaLSTMController
from metalearn.rl.maml_rl import MAMLRollouts, adapt_by_policy_gradient
from metalearn.rl.rollouts import discounted_returns, linear_baseline
from metalearn.tasks import Sinusoid

NAN, INF = float("nan"), float("inf")


def batch() -> ml.TaskBatch:
    x = torch.ones(2, 3, 1)
    return ml.TaskBatch(x, 2 * x, x, 2 * x)


class GradientTurnsNaN(nn.Module):
    """A finite loss whose gradient is NaN from step ``bad_step`` on: d/dw sqrt(0 * w) = inf * 0."""

    def __init__(self, bad_step: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))
        self.bad_step, self.calls = bad_step, 0

    def meta_loss(self, support_x, support_y, query_x, query_y) -> torch.Tensor:
        self.calls += 1
        loss = (self.weight - 3.0).pow(2).sum()
        if self.calls > self.bad_step:
            loss = loss + torch.sqrt(self.weight * 0.0).sum()  # adds 0, gradient NaN
        return loss

    def predict(self, support_x, support_y, query_x) -> torch.Tensor:
        return query_x


@pytest.mark.parametrize("grad_clip", [None, 1.0])
def test_a_nan_gradient_stops_meta_training_before_the_update(grad_clip):
    learner = GradientTurnsNaN(bad_step=2)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    seen = []

    def sample() -> ml.TaskBatch:
        seen.append(learner.weight.detach().clone())
        return batch()

    with pytest.raises(FloatingPointError, match=r"gradient of 'weight' .* at step 2"):
        ml.meta_train(
            learner, Calls(sample), 5, optimizer, meta_batch=2, grad_clip=grad_clip, progress=False
        )
    # the parameters are those after step 1: finite, untouched by the NaN gradient
    assert torch.isfinite(learner.weight).all()
    assert torch.equal(learner.weight.detach(), seen[2])


def test_an_update_that_overflows_the_parameters_is_an_error():
    learner = GradientTurnsNaN(bad_step=10**6)
    optimizer = torch.optim.SGD(learner.parameters(), lr=1e38)  # finite, absurd
    with pytest.raises(FloatingPointError, match=r"'weight' became NaN or infinite .* step 0"):
        ml.meta_train(learner, Calls(batch), 1, optimizer, meta_batch=2, progress=False)


@pytest.mark.parametrize("grad_clip", [NAN, INF, 0.0, -1.0, True])
def test_grad_clip_must_be_a_finite_positive_number(grad_clip):
    learner = GradientTurnsNaN(bad_step=10)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="grad_clip"):
        ml.meta_train(
            learner, Calls(batch), 1, optimizer, meta_batch=2, grad_clip=grad_clip, progress=False
        )


@pytest.mark.parametrize("lr", [NAN, INF])
def test_a_non_finite_optimizer_learning_rate_is_refused(lr):
    learner = GradientTurnsNaN(bad_step=10)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    optimizer.param_groups[0]["lr"] = lr
    with pytest.raises(ValueError, match="lr="):
        ml.meta_train(learner, Calls(batch), 1, optimizer, meta_batch=2, progress=False)


def test_nan_logits_score_nan_not_full_accuracy():
    logits = torch.randn(3, 4, 5)
    labels = logits.argmax(dim=-1)  # every prediction right ...
    logits[1] = NAN  # ... except that task 1 predicts NaN
    logits[2, 0, 3] = NAN  # and one query of task 2
    scores = ml.accuracy(logits, labels)
    assert scores[0].item() == 1.0
    assert math.isnan(scores[1].item()) and math.isnan(scores[2].item())


def test_nan_predictions_give_a_nan_mse_and_a_nan_summary():
    predictions = torch.zeros(2, 3, 1)
    predictions[0, 1, 0] = NAN
    assert torch.isnan(ml.mse(predictions, torch.zeros(2, 3, 1))).tolist() == [True, False]

    class PredictsNaN:
        def predict(self, support_x, support_y, query_x):
            return torch.full((*query_x.shape[:2], 2), NAN)

    episodes = ml.TaskBatch(
        torch.randn(2, 2, 1),
        torch.tensor([[0, 1], [1, 0]]),
        torch.randn(2, 3, 1),
        torch.zeros(2, 3, dtype=torch.long),
    )
    summary = ml.evaluate(PredictsNaN(), [episodes])
    assert math.isnan(summary.mean) and math.isnan(summary.ci95)
    assert str(summary) == "nan ± nan"


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: ml.MAML(ml.MLP(1, [4], 1), F.mse_loss, inner_lr=v), "inner_lr"),
        (lambda v: ml.FineTune(nn.Linear(1, 1), F.mse_loss, lr=v, steps=1), "lr"),
        (lambda v: ml.TrainFromScratch(lambda: nn.Linear(1, 1), F.mse_loss, v, 1), "lr"),
        (lambda v: Sinusoid(amplitude_range=(0.1, v)), "amplitude_range"),
        (lambda v: Sinusoid(phase_range=(v, 1.0)), "phase_range"),
        (lambda v: Sinusoid(x_range=(-5.0, v)), "x_range"),
        (lambda v: Navigation2D(torch.zeros(2, 2), max_action=v), "max_action"),
        (lambda v: Navigation2D(torch.zeros(2, 2), goal_radius=v), "goal_radius"),
        (lambda v: Navigation2D(torch.tensor([[0.1, v]])), "goals"),
        (lambda v: Navigation2D(torch.zeros(1, 2), rotations=torch.tensor([v])), "rotations"),
        (lambda v: Navigation2D(torch.zeros(1, 2), gains=torch.tensor([v])), "gains"),
        (lambda v: Navigation2D.sample(2, dynamics=True, max_rotation=v), "max_rotation"),
        (lambda v: Navigation2D.sample(2, dynamics=True, gain_range=(0.5, v)), "gain_range"),
        (lambda v: ml.LSTMMetaLearner(nn.Linear(2, 2), F.cross_entropy, init_lr=v), "init_lr"),
        (
            lambda v: ml.LSTMMetaLearner(nn.Linear(2, 2), F.cross_entropy, init_forget_bias=v),
            "init_forget_bias",
        ),
        (lambda v: GaussianMLPPolicy(2, 2, init_std=v), "init_std"),
        (lambda v: MetaLSTMController(max_action=v), "max_action"),
        (lambda v: discounted_returns(torch.zeros(2, 5), v), "discount"),
        (
            lambda v: linear_baseline(
                torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3), torch.ones(1, 1, 3), v
            ),
            "reg",
        ),
    ],
)
def test_every_float_setting_is_checked_for_finiteness(make, name, bad):
    with pytest.raises(ValueError, match=name):
        make(bad)


@pytest.mark.parametrize("bad", [NAN, INF])
def test_reinforcement_learning_rates_and_discounts_are_finite(bad):
    policy = GaussianMLPPolicy(2, 2, hidden=(4,))
    maml = ml.MAML(policy, F.mse_loss, inner_lr=0.1)
    with pytest.raises(ValueError, match="discount"):
        MAMLRollouts(maml, 2, discount=bad)
    with pytest.raises(ValueError, match=r"lrs\[1\]"):
        adapt_by_policy_gradient(policy, Navigation2D.sample(2), lrs=(0.1, bad))


def test_finite_settings_still_work():
    assert (
        Sinusoid(amplitude_range=(0.5, 2)).sample(2, k_shot=3, k_query=3).support_y.abs().max() <= 2
    )
    env = Navigation2D(torch.zeros(1, 2), max_action=0.2, goal_radius=0.0)
    env.reset(1)
    torch.testing.assert_close(
        env.step(torch.ones(1, 1, 2)).observation, torch.full((1, 1, 2), 0.2)
    )
