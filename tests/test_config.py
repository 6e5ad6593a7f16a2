import pytest

from metalearn import config


def test_quick_is_the_default(monkeypatch):
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    assert config.profile() == "quick"


def test_full_profile_is_selected_by_the_environment(monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, "FULL")
    assert config.profile() == "full"


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"METALEARN_PROFILE='fast'.*quick, full"):
        config.profile()


def test_every_experiment_defines_the_same_sizes_in_both_profiles():
    assert config.EXPERIMENTS, "no experiment is configured"
    for name, profiles in config.EXPERIMENTS.items():
        assert set(profiles) == set(config.PROFILES), name
        assert set(profiles["quick"]) == set(profiles["full"]), name


def test_settings_follow_the_profile(monkeypatch):
    name = next(iter(config.EXPERIMENTS))
    for profile in config.PROFILES:
        monkeypatch.setenv(config.ENV_VAR, profile)
        cfg = config.settings(name)
        assert cfg.profile == profile
        for key, value in config.EXPERIMENTS[name][profile].items():
            assert getattr(cfg, key) == value


def test_unknown_experiment_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown experiment 'nope'"):
        config.settings("nope")
