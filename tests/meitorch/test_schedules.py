"""Schedules give the stated values, alone and as config values of real runs."""

import pytest
import torch

from mei.engine.resolve import ConfigError
from mei.meitorch.mei import MEI
from mei.meitorch.tools.schedules import LinearSchedule, OctaveSchedule, RandomSchedule, schedule_from_json

from .helpers import SHAPE, linear_operation, squared_distance_operation, target


def test_linear_runs_from_start_at_first_step_to_end_at_last():
    schedule = LinearSchedule(1.0, 0.0).bind(5)
    assert [schedule(i) for i in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert schedule(10) == 0.0  # past the end it stays at end


def test_octave_splits_the_run_into_equal_parts():
    assert [OctaveSchedule([3, 2, 1]).bind(6)(i) for i in range(6)] == [3, 3, 2, 2, 1, 1]
    assert [OctaveSchedule([3, 2, 1]).bind(7)(i) for i in range(7)] == [3, 3, 3, 2, 2, 1, 1]


def test_random_is_uniform_in_range_and_reproducible():
    a = [RandomSchedule(1.0, 1.025).bind(100, seed=3)(i) for i in range(100)]
    b = [RandomSchedule(1.0, 1.025).bind(100, seed=3)(i) for i in range(100)]
    c = [RandomSchedule(1.0, 1.025).bind(100, seed=4)(i) for i in range(100)]
    assert a == b and a != c
    assert all(1.0 <= v <= 1.025 for v in a)
    assert len(set(a)) == 100 and 1.005 < sum(a) / 100 < 1.02


def test_unbound_schedule_says_what_to_do_and_user_object_is_not_changed():
    schedule = LinearSchedule(0.1, 0.01)
    with pytest.raises(ValueError, match="bind"):
        schedule(0)
    schedule.bind(10)
    assert schedule.n_iter is None


def test_schedule_constructors_check_values():
    with pytest.raises(ValueError, match="maximum"):
        RandomSchedule(2, 1)
    with pytest.raises(ValueError, match="values"):
        OctaveSchedule([])
    with pytest.raises(ValueError, match="start"):
        LinearSchedule("a", 1)


def test_json_form():
    assert schedule_from_json({"schedule": "octave", "values": [1, 2]}).bind(2)(1) == 2
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule_from_json({"schedule": "cosine"})


def test_norm_schedule_sets_each_steps_norm():
    result = MEI(squared_distance_operation(target()), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=3, save_every=1, norm=LinearSchedule(1.0, 2.0), optimizer="sgd"), seed=0)
    norms = [image.norm().item() for image in result.images]
    assert norms == pytest.approx([1.0, 1.5, 2.0], rel=1e-5)


def test_learning_rate_schedule_sets_each_steps_rate():
    w = target(2)
    config = dict(iter_n=3, bias=0, scale=0, optimizer="sgd",
                  optimizer_params=dict(lr=LinearSchedule(0.1, 0.3)))
    result = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(config, seed=0)
    assert torch.allclose(result.mei[0], 0.6 * w, atol=1e-6)  # 0.1 + 0.2 + 0.3 steps along w


def test_json_schedule_in_a_config_and_bad_schedule_names_its_key():
    config = dict(iter_n=2, save_every=1, norm={"schedule": "octave", "values": [3.0, 4.0]})
    result = MEI(squared_distance_operation(target()), shape=SHAPE).generate_pixel_mei(config, seed=0)
    assert [image.norm().item() for image in result.images] == pytest.approx([3.0, 4.0], rel=1e-5)
    with pytest.raises(ConfigError, match="norm: must be > 0"):
        MEI(squared_distance_operation(target()), shape=SHAPE).generate_pixel_mei(
            dict(iter_n=2, norm=LinearSchedule(1.0, 0.0)))
