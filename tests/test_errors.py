"""Meta-tests for the error tree: every error pickles and keeps its data and exit code."""

from __future__ import annotations

import inspect
import pickle

import pytest

import broadcaster.errors as errors
from broadcaster.errors import BroadcastError, ChannelError, ConfigError, TransientError

ALL_ERRORS = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, BroadcastError)
]


def example(cls: type[BroadcastError]) -> BroadcastError:
    if issubclass(cls, ConfigError):
        return cls(["a.toml: x: wrong", "a.toml: y: wrong"])
    if issubclass(cls, TransientError):
        return cls("website", "down", retry_after=2.5)
    if issubclass(cls, ChannelError):
        return cls("website", "down")
    return cls("something went wrong")


def test_every_error_is_exported() -> None:
    exported_errors = [
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), BaseException)
    ]
    assert sorted(cls.__name__ for cls in ALL_ERRORS) == sorted(exported_errors)
    assert set(errors.__all__) - set(exported_errors) == {"RateScope"}  # what a limit covers


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_survives_pickling(cls: type[BroadcastError]) -> None:
    original = example(cls)
    restored = pickle.loads(pickle.dumps(original))
    assert type(restored) is cls
    assert str(restored) == str(original)
    assert vars(restored) == vars(original)
    assert restored.exit_code == original.exit_code


def test_exit_codes_separate_bad_input_from_refusals() -> None:
    assert errors.InputError.exit_code == errors.ConfigError.exit_code == 2
    assert errors.RenderError.exit_code == errors.NotFoundError.exit_code == 2
    assert errors.ApprovalError.exit_code == errors.StateError.exit_code == 1
