"""Every example instance in the CRD, DTR and PAS packages validates against its profiles.

Each package's examples are validated with that package's own profiles preferred (a PAS 2.0.1
example against PAS 2.0.1, not 2.2.1). The few examples the IGs themselves ship broken are listed
in `SHIPPED_BROKEN` with the reason; for those, exactly the documented errors must be reported
(nothing weakened, nothing else wrong).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.packages import load_registry
from app.fhir.validation import validator_for
from tests.conftest import FHIR_PACKAGES
from tests.fhir.conftest import CRD_201, DTR_201, PAS_201, PAS_221

DAVINCI = (CRD_201, DTR_201, PAS_201, PAS_221)

_SPEC_13 = "PAS spec-13: the Bundle SHALL hold every resource the Claim references"

#: (package, example file) -> (why the IG's own example is invalid, the errors it must produce:
#: (expression, fragment of the diagnostics)).
SHIPPED_BROKEN: dict[tuple[str, str], tuple[str, list[tuple[str, str]]]] = {
    (PAS_201, "example/Bundle-SurgicalRequestBundleExample.json"): (
        "The Encounter the Claim references points at Practitioner/ReferralPractitionerExample "
        "and Location/ReferralLocationExample, but the Bundle holds the *Surgical* Practitioner "
        "and Location (PAS spec-13: every referenced resource SHALL be in the Bundle).",
        [
            ("Bundle.entry[6].resource.practitioner.reference", _SPEC_13),
            ("Bundle.entry[6].resource.location[0].reference", _SPEC_13),
        ],
    ),
    (PAS_221, "example/Bundle-SurgicalRequestBundleExample.json"): (
        "Same defect as in PAS 2.0.1 (Encounter -> Referral Practitioner and Location, absent).",
        [
            ("Bundle.entry[6].resource.practitioner.reference", _SPEC_13),
            ("Bundle.entry[6].resource.location[0].reference", _SPEC_13),
        ],
    ),
}


def _examples() -> list[Any]:
    registry = load_registry(FHIR_PACKAGES)
    params = []
    for package_id in DAVINCI:
        name, _, version = package_id.partition("#")
        package = registry.package(name, version)
        assert package is not None, f"{package_id} is not in {FHIR_PACKAGES}"
        for entry in package.entries:
            if entry.example:
                params.append(
                    pytest.param(
                        package_id, entry.filename, id=f"{package_id}:{entry.filename[8:]}"
                    )
                )
    return params


EXAMPLES = _examples()


def test_every_davinci_example_is_swept() -> None:
    counts: dict[str, int] = {}
    for param in EXAMPLES:
        counts[param.values[0]] = counts.get(param.values[0], 0) + 1
    assert counts == {CRD_201: 16, DTR_201: 16, PAS_201: 39, PAS_221: 47}


@pytest.mark.parametrize(("package_id", "filename"), EXAMPLES)
def test_ig_example_validates(package_id: str, filename: str) -> None:
    registry = load_registry(FHIR_PACKAGES)
    name, _, version = package_id.partition("#")
    package = registry.package(name, version)
    assert package is not None
    example = package.load(filename)
    result = validator_for(FHIR_PACKAGES, package_id).validate(example)
    broken = SHIPPED_BROKEN.get((package_id, filename))
    if broken is None:
        assert result.ok, f"{filename} ({package_id}):\n{result.describe()}"
        return
    _reason, expected = broken
    found = [(issue.expression[0], issue.diagnostics) for issue in result.errors]
    for path, fragment in expected:
        assert any(p == path and fragment in d for p, d in found), (path, fragment, found)
    unexpected = [(p, d) for p, d in found if not any(p == e and f in d for e, f in expected)]
    assert not unexpected, f"{filename}: errors beyond the documented IG defect: {unexpected}"


def test_validation_does_not_modify_the_example() -> None:
    registry = load_registry(FHIR_PACKAGES)
    package = registry.package("hl7.fhir.us.davinci-pas", "2.2.1")
    assert package is not None
    example = package.load("example/Bundle-ReferralAuthorizationBundleExample.json")
    before = repr(example)
    validator_for(FHIR_PACKAGES, PAS_221).validate(example)
    assert repr(example) == before
