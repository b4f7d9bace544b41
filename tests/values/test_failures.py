"""An error as it travels back to an asker (actorfw.values.failures)."""

from __future__ import annotations

import pytest

from actorfw import RemoteError
from actorfw.values import codec
from actorfw.values.errors import ActorNotFound
from actorfw.values.failures import (
    TRACEBACK_LIMIT,
    error_from_failure,
    failure_of,
    remote_exception,
)


@remote_exception
class AccountError(Exception):
    """A user's error, registered: it travels as itself."""


@remote_exception(name="tests.Overdrawn")
class Overdrawn(Exception):
    """A registered error whose constructor takes structured arguments."""

    def __init__(self, account: str, missing: int) -> None:
        super().__init__(account, missing)
        self.account = account
        self.missing = missing


class Unregistered(Exception):
    """Not registered: it travels as a RemoteError naming it."""


def _raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as caught:
        return caught


def _round_trip(error: Exception) -> Exception | None:
    failure = failure_of(_raised(error), "n2/bank")
    body, buffers, plain = codec.encode(failure)
    return error_from_failure(codec.decode(body, buffers, plain))


def test_a_registered_exception_arrives_as_itself_with_its_origin() -> None:
    error = _round_trip(AccountError("no such account: 7"))
    assert type(error) is AccountError
    assert str(error) == "no such account: 7"
    assert error.actor == "n2/bank"  # type: ignore[attr-defined]
    assert "AccountError: no such account: 7" in error.remote_traceback  # type: ignore[attr-defined]


def test_a_registered_exception_is_rebuilt_from_its_args() -> None:
    error = _round_trip(Overdrawn("alice", 30))
    assert isinstance(error, Overdrawn)
    assert (error.account, error.missing) == ("alice", 30)


def test_an_unregistered_exception_arrives_as_a_remote_error_naming_it() -> None:
    error = _round_trip(Unregistered("boom"))
    assert type(error) is RemoteError
    assert error.type_name == f"{__name__}.Unregistered"
    assert error.message == "boom"


def test_a_builtin_exception_is_also_an_instance_of_the_builtin() -> None:
    error = _round_trip(KeyError("k"))
    assert isinstance(error, KeyError) and isinstance(error, RemoteError)


def test_a_framework_error_arrives_as_itself() -> None:
    assert type(_round_trip(ActorNotFound("no actor 'x'"))) is ActorNotFound


def test_a_registered_exception_whose_args_are_not_message_values_is_a_remote_error() -> None:
    failure = failure_of(_raised(AccountError(object())), "n2/bank")
    assert len(failure) == 4
    error = error_from_failure(failure)
    assert type(error) is RemoteError and error.type_name == f"{__name__}.AccountError"


def test_a_registered_exception_that_cannot_be_rebuilt_is_a_remote_error() -> None:
    # args the constructor does not take back (a peer sent something else)
    error = error_from_failure(["tests.Overdrawn", "x", "", "n2/bank", ["only-one"]])
    assert type(error) is RemoteError and error.type_name == "tests.Overdrawn"


def test_an_error_passed_on_keeps_its_origin() -> None:
    first = _round_trip(AccountError("gone"))
    assert first is not None
    again = error_from_failure(failure_of(first, "n3/teller"))
    assert type(again) is AccountError
    assert again.actor == "n2/bank"  # type: ignore[attr-defined]
    remote = _round_trip(Unregistered("deep"))
    assert remote is not None
    passed = error_from_failure(failure_of(remote, "n3/teller"))
    assert isinstance(passed, RemoteError) and passed.actor == "n2/bank"


def test_a_long_traceback_is_cut_to_the_limit() -> None:
    failure = failure_of(_raised(ValueError("x" * (3 * TRACEBACK_LIMIT))), "n1/a")
    assert len(failure[2]) <= TRACEBACK_LIMIT + len("\n...\n")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "boom",
        ["a", "b", "c"],
        ["a", "b", "c", 4],
        ["a", "b", "c", "d", "not-a-list"],
        ["a", "b", "c", "d", [], "sixth"],
    ],
)
def test_a_malformed_failure_is_not_taken_for_one(value: object) -> None:
    assert error_from_failure(value) is None


def test_registering_another_class_under_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="is taken by"):

        @remote_exception(name="tests.Overdrawn")
        class Other(Exception):
            pass


def test_only_exception_classes_can_be_registered() -> None:
    with pytest.raises(TypeError, match="messages are registered with @message"):
        remote_exception(int)
