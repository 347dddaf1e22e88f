"""The error tree: Status bodies map to the most specific class, and native errors are the
same classes Python code catches."""

from __future__ import annotations

import pickle

import pytest

from kfast import errors
from kfast._native import StoredObject


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ({"code": 404, "reason": "NotFound"}, errors.NotFound),
        ({"code": 409, "reason": "AlreadyExists"}, errors.AlreadyExists),
        ({"code": 409, "reason": "Conflict"}, errors.Conflict),
        ({"code": 410, "reason": "Expired"}, errors.Expired),
        ({"code": 410, "reason": "Gone"}, errors.Gone),
        ({"code": 422, "reason": "Invalid"}, errors.Invalid),
        ({"code": 429, "reason": "TooManyRequests"}, errors.TooManyRequests),
        ({"code": 403, "reason": "Forbidden"}, errors.Forbidden),
        ({"code": 401, "reason": "Unauthorized"}, errors.Unauthorized),
        ({"code": 500, "reason": "InternalError"}, errors.InternalError),
        ({"code": 504, "reason": "Timeout"}, errors.ServerTimeout),
        ({"code": 418, "reason": "Teapot"}, errors.ApiError),
    ],
)
def test_status_maps_to_class(status: dict[str, object], cls: type[errors.ApiError]) -> None:
    err = errors.api_error_from_status({"kind": "Status", "message": "m", **status})
    assert type(err) is cls
    assert err.code == status["code"]
    assert err.reason == status["reason"]
    assert err.message == "m"
    assert isinstance(err, errors.KfastError)


def test_gone_carries_fresh_continue_token() -> None:
    err = errors.api_error_from_status(
        {"code": 410, "reason": "Expired", "metadata": {"continue": "tok"}}
    )
    assert isinstance(err, errors.Gone)
    assert err.continue_token == "tok"


def test_too_many_requests_retry_after() -> None:
    err = errors.api_error_from_status({"code": 429, "details": {"retryAfterSeconds": 3}})
    assert isinstance(err, errors.TooManyRequests)
    assert err.retry_after == 3.0
    err2 = errors.api_error_from_status({"code": 429}, retry_after=1.5)
    assert isinstance(err2, errors.TooManyRequests) and err2.retry_after == 1.5


def test_invalid_causes() -> None:
    causes = [{"reason": "FieldValueRequired", "field": "spec.x"}]
    err = errors.api_error_from_status({"code": 422, "details": {"causes": causes}})
    assert isinstance(err, errors.Invalid)
    assert err.causes == causes


def test_code_only() -> None:
    err = errors.api_error_from_status(None, code=404)
    assert isinstance(err, errors.NotFound) and err.code == 404


def test_errors_pickle() -> None:
    err = errors.api_error_from_status({"code": 404, "reason": "NotFound", "message": "x"})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.NotFound and back.message == "x"
    d = pickle.loads(pickle.dumps(errors.DecodeError("bad", 12)))
    assert d.offset == 12


def test_native_decode_error_is_kfast_class() -> None:
    with pytest.raises(errors.DecodeError) as ei:
        StoredObject(b'{"metadata": ')
    assert ei.value.offset >= 0
    assert "invalid object JSON" in str(ei.value)


@pytest.mark.parametrize(
    "status",
    [
        {"code": "abc", "reason": "NotFound"},
        {"code": 404, "details": "not a mapping"},
        {"code": 429, "details": {"retryAfterSeconds": "soon"}},
        {"code": None},
        {"code": True},
    ],
)
def test_malformed_status_still_gives_a_typed_error(status: dict[str, object]) -> None:
    # A broken Status body (from a proxy, say) must not turn into a ValueError.
    err = errors.api_error_from_status(status, code=404)
    assert isinstance(err, errors.ApiError)
    assert err.code in (404, 429)
    assert isinstance(err.details, dict)


def test_non_mapping_status() -> None:
    err = errors.api_error_from_status("garbage", code=500)  # type: ignore[arg-type]
    assert isinstance(err, errors.InternalError) and err.code == 500
