"""PAS conf-14: omitting an element the profiles allow to be omitted is never a conformance error.

The payer's conformance gate is `check_inbound` (here in `enforce` mode, the strictest). Starting
from the request Bundle the Inferno PAS suite submits, every optional top-level element of every
entry (min 0 in the profile the entry declares) is removed in turn, and the Bundle must still be
accepted.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from app.config import Settings
from app.fhir.validation import validator_for
from app.fhir.validation.policy import PAS_REQUEST_BUNDLE, check_inbound
from tests.conftest import FHIR_PACKAGES, INFERNO_FIXTURES
from tests.fhir.conftest import PAS_201

BUNDLE = (
    INFERNO_FIXTURES / "davinci-pas-test-kit/extracted/v201/approval_pa_submit_request_payload.json"
)


def _optional_elements(bundle: dict[str, Any]) -> list[tuple[int, str]]:
    validator = validator_for(FHIR_PACKAGES, PAS_201)
    found: list[tuple[int, str]] = []
    for index, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        profile = resource.get("meta", {}).get("profile", [None])[0]
        structure = validator.structure(profile) if profile else None
        if structure is None:
            continue
        keys = structure.root.json_keys()
        for key in resource:
            hit = keys.get(key)
            if hit is not None and hit[0].min == 0:
                found.append((index, key))
    return found


@pytest.mark.requirement("PAS", "conf-14")
def test_omitting_optional_elements_is_not_a_conformance_error() -> None:
    original = orjson.loads(BUNDLE.read_bytes())
    enforce = Settings.model_validate({"validation": "enforce", "ig_packages": FHIR_PACKAGES})
    accepted = check_inbound(original, enforce, profile=PAS_REQUEST_BUNDLE, prefer=PAS_201)
    assert all(i.severity == "warning" for i in accepted)
    omitted = _optional_elements(original)
    assert len(omitted) >= 30, omitted  # Claim, Patient, Coverage, Organizations, ...
    for index, key in omitted:
        variant = copy.deepcopy(original)
        del variant["entry"][index]["resource"][key]
        # Raises FhirError(422) if the omission were treated as a conformance error.
        issues = check_inbound(variant, enforce, profile=PAS_REQUEST_BUNDLE, prefer=PAS_201)
        assert all(i.severity == "warning" for i in issues), (index, key, issues)


def test_omitting_a_required_element_is_an_error() -> None:
    """The counterpart: the same gate does reject a missing min-1 element."""
    bundle = orjson.loads(BUNDLE.read_bytes())
    del bundle["entry"][0]["resource"]["patient"]
    result = validator_for(FHIR_PACKAGES, PAS_201).validate(bundle, PAS_REQUEST_BUNDLE)
    assert [i.expression for i in result.errors] == [("Bundle.entry[0].resource.patient",)]
