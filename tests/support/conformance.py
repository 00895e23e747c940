"""`assert_conforms(resource, profile)`: what every API test applies to what the server returns.

It validates with the IG packages in ../shared/fhir-packages (the same validator the server uses)
and fails with one line per error, each naming its element path. Warnings and information issues
(e.g. a US Core profile that is not in the packages) do not fail the assertion.

    from tests.support.conformance import assert_conforms
    assert_conforms(response.json(), "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-response-bundle")
    assert_conforms(claim_response, PAS_CLAIM_RESPONSE, ig="hl7.fhir.us.davinci-pas#2.0.1")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.fhir.validation import ValidationResult, validator_for
from tests.conftest import FHIR_PACKAGES


def validate(
    resource: dict[str, Any], profile: str | Sequence[str] | None = None, *, ig: str | None = None
) -> ValidationResult:
    """Validate against `profile` (and `meta.profile`); `ig` prefers a package (`name#version`)."""
    return validator_for(FHIR_PACKAGES, ig).validate(resource, profile)


def assert_conforms(
    resource: dict[str, Any], profile: str | Sequence[str] | None = None, *, ig: str | None = None
) -> ValidationResult:
    """Fail unless `resource` validates without errors; returns the result for further checks."""
    __tracebackhide__ = True
    assert isinstance(resource, dict), f"expected a FHIR resource (JSON object), got {resource!r}"
    result = validate(resource, profile, ig=ig)
    if not result.ok:
        shown = profile if isinstance(profile, str) else ", ".join(profile or ()) or "meta.profile"
        raise AssertionError(
            f"{resource.get('resourceType')} does not conform to {shown}:\n{result.describe()}"
        )
    return result
