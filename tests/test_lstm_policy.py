"""The Meta-LSTM controller: its policy form, episodes with prior experience, and training."""

import math

import pytest
import torch

from metalearn.envs import Navigation2D
from metalearn.rl.controller import MetaLSTMController, run_controller, train_controller


def rotated_task(angle: float, gain: float = 1.0) -> Navigation2D:
    return Navigation2D(
        torch.tensor([[0.4, -0.3]]),
        rotations=torch.tensor([angle]),
        gains=torch.tensor([gain]),
        observe_goal=True,
        horizon=30,
    )


def fixed_gain_controller(gain: torch.Tensor) -> MetaLSTMController:
    controller = MetaLSTMController(hidden=4, memory=False)
    with torch.no_grad():
        controller.to_gain.weight.zero_()
        controller.to_gain.bias.copy_(gain.flatten())
    return controller


def test_actions_are_bounded_and_shaped():
    controller = MetaLSTMController(hidden=8)
    state = controller.initial_state((3, 5))
    state = controller.observe(state, torch.randn(3, 5, 2), torch.randn(3, 5, 2))
    actions = controller(state, 10 * torch.randn(3, 5, 4))
    assert actions.shape == (3, 5, 2) and actions.abs().max() <= 0.1
    assert controller.gain(state).shape == (3, 5, 2, 2)


def test_memoryless_controller_ignores_transitions():
    controller = MetaLSTMController(hidden=8, memory=False)
    state = controller.initial_state((2,))
    assert controller.observe(state, torch.ones(2, 2), torch.ones(2, 2)) is state


def test_the_gain_that_undoes_the_actuator_reaches_the_goal_and_identity_does_not():
    angle, gain = 2.5, 0.8
    undo = (
        torch.tensor([[math.cos(-angle), -math.sin(-angle)], [math.sin(-angle), math.cos(-angle)]])
        / gain
    )
    with torch.no_grad():
        good, good_path = run_controller(fixed_gain_controller(undo), rotated_task(angle, gain), 1)
        bad, _ = run_controller(fixed_gain_controller(torch.eye(2)), rotated_task(angle, gain), 1)
    assert torch.allclose(good_path[0, 0, -1], torch.tensor([0.4, -0.3]), atol=0.01)
    assert good.sum() > -3.0 and bad.sum() < 2 * good.sum(), (good.sum(), bad.sum())


def test_prior_experience_is_observed_and_the_episode_restarts_at_the_origin():
    controller = MetaLSTMController(hidden=8)
    env = rotated_task(1.0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        rewards0, positions0 = run_controller(
            controller, env, 2, prior_steps=0, generator=generator
        )
        rewards3, positions3 = run_controller(
            controller, env, 2, prior_steps=3, generator=generator
        )
    assert rewards0.shape == (1, 2, 30) and positions0.shape == (1, 2, 31, 2)
    assert (positions3[:, :, 0] == 0).all()
    assert not torch.allclose(positions0, positions3)  # the memory changed the behaviour


def test_return_is_differentiable_in_the_lstm_weights():
    controller = MetaLSTMController(hidden=8)
    rewards, _ = run_controller(
        controller, rotated_task(0.5), 2, prior_steps=1, generator=torch.Generator().manual_seed(0)
    )
    rewards.sum().backward()
    assert controller.lstm.weight_ih.grad.abs().sum() > 0


def test_training_improves_the_return_on_the_dynamics_variant():
    torch.manual_seed(0)
    controller = MetaLSTMController(hidden=16)
    history = train_controller(
        controller,
        40,
        torch.optim.Adam(controller.parameters(), 1e-2),
        meta_batch=16,
        env_options=dict(horizon=15),
        progress=False,
    )
    assert sum(history[-5:]) / 5 > sum(history[:5]) / 5 + 1.0, history


def test_bad_arguments_raise_value_error_naming_them():
    controller = MetaLSTMController(hidden=4)
    with pytest.raises(ValueError, match="env"):
        run_controller(controller, Navigation2D(torch.zeros(1, 2)), 1)
    with pytest.raises(ValueError, match="prior_steps"):
        run_controller(controller, rotated_task(0.0), 1, prior_steps=-1)
    with pytest.raises(ValueError, match="steps"):
        train_controller(controller, 0, torch.optim.SGD(controller.parameters(), 0.1), meta_batch=1)
