import math

import pytest

import minitorchnn as mtn
from minitorchnn.train.config import FIELDS


def test_the_defaults_are_the_lectures_sgd():
    config = mtn.TrainConfig()
    assert (config.optimizer, config.lr, config.schedule, config.batch_size, config.clip) == ("sgd", 0.1, "constant", 32, None)
    assert mtn.TrainConfig(schedule=None).schedule == "constant"  # the lectures' "no schedule"
    assert mtn.TrainConfig(betas=[0.9, 0.99]).betas == (0.9, 0.99)


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be at least 1, got 0"),
    ("steps", -5, "steps must be at least 1, got -5"),
    ("steps", 2.5, "steps must be an integer, got 2.5"),
    ("steps", True, "steps must be an integer, got True"),
    ("batch_size", 0, "batch_size must be at least 1, got 0"),
    ("lr", 0, "lr must be above 0, got 0"),
    ("lr", -0.1, "lr must be above 0, got -0.1"),
    ("lr", math.nan, "lr must be a finite number, got nan"),
    ("lr", math.inf, "lr must be a finite number, got inf"),
    ("lr", "0.1", "lr must be a finite number, got '0.1'"),
    ("clip", 0, "clip must be above 0, got 0"),
    ("clip", -1.0, "clip must be above 0, got -1.0"),
    ("clip", math.nan, "clip must be a finite number, got nan"),
    ("momentum", 1.0, "momentum must be below 1, got 1.0"),
    ("weight_decay", -1e-4, "weight_decay must be at least 0"),
    ("betas", (1.0, 0.9), r"betas must be two numbers in \[0, 1\)"),
    ("schedule", "linear", "schedule must be one of constant, step, exponential, cosine"),
    ("optimizer", "adam", "optimizer must be one of sgd, adamw, got 'adam'"),
    ("eval_interval", 0, "eval_interval must be at least 1, got 0"),
    ("eval_iters", 0, "eval_iters must be at least 1, got 0"),
    ("seed", 1.5, "seed must be an integer"),
])
def test_every_bad_setting_is_refused_naming_it(field, value, message):
    with pytest.raises(mtn.ConfigError, match=message) as err:
        mtn.TrainConfig(**{field: value})
    assert err.value.field == field


def test_cosine_warmup_must_leave_steps_to_decay():
    with pytest.raises(mtn.ConfigError, match=r"warmup_steps must be below steps \(100\), got 100"):
        mtn.TrainConfig(steps=100, schedule="cosine", warmup_steps=100)


def test_replace_checks_the_new_values_and_refuses_unknown_settings():
    config = mtn.TrainConfig(steps=10)
    assert config.replace(lr=0.01).lr == 0.01 and config.lr == 0.1  # a copy; frozen
    with pytest.raises(mtn.ConfigError, match="unknown training setting learning_rate; known: steps, batch_size"):
        config.replace(learning_rate=0.01)
    with pytest.raises(mtn.ConfigError, match="lr must be above 0"):
        config.replace(lr=0.0)
    assert set(FIELDS) >= {"steps", "batch_size", "lr", "schedule", "optimizer", "momentum", "weight_decay",
                           "betas", "clip", "seed", "eval_interval", "eval_iters"}


def test_describe_shows_the_settings_that_act():
    sgd = mtn.TrainConfig(optimizer="sgd", momentum=0.9).describe()
    assert "momentum=0.9" in sgd and "betas" not in sgd
    adamw = mtn.TrainConfig(optimizer="adamw", betas=(0.9, 0.99), schedule="cosine", warmup_steps=10).describe()
    assert "betas=(0.9, 0.99)" in adamw and "momentum" not in adamw and "warmup_steps=10" in adamw
