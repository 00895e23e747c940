"""`app.fhir.models.check_resource` remembers the resources it accepted, by the digest of their
exact JSON: a resource sent again unchanged is not checked again, anything changed is."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.fhir import models
from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError
from app.lru import Lru
from tests.fhir.test_quick_check import corpus


def _refuse_to_check(*_args: Any) -> bool:
    raise AssertionError("checked again")


def test_an_accepted_resource_is_remembered_by_its_exact_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same draft order sent again (order-select, then order-sign) is accepted without being
    checked again; any change to it is checked afresh, and refused when invalid."""
    monkeypatch.setattr(models, "_accepted", Lru[bytes, bool](models.REMEMBERED_RESOURCES))
    resource = copy.deepcopy(corpus()[0])
    assert check_resource(resource) is resource

    monkeypatch.setattr(models, "conforms", _refuse_to_check)
    again = copy.deepcopy(resource)
    assert check_resource(again) is again
    changed = {**resource, "status": 5}
    with pytest.raises(AssertionError, match="checked again"):
        check_resource(changed)
    monkeypatch.undo()
    with pytest.raises(FhirError) as refused:
        check_resource(changed)
    assert refused.value.status == 400


def test_remembered_resources_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    remembered = Lru[bytes, bool](3)
    monkeypatch.setattr(models, "_accepted", remembered)
    resource = corpus()[0]
    for number in range(5):
        check_resource({**resource, "id": f"r{number}"})
    assert len(remembered) == 3
    monkeypatch.setattr(models, "conforms", _refuse_to_check)
    check_resource({**resource, "id": "r4"})  # among the three most recent
    with pytest.raises(AssertionError, match="checked again"):
        check_resource({**resource, "id": "r0"})  # the oldest, gone
