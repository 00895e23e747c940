"""`GREENLIGHT_VALIDATION` on inbound payloads (off | warn | enforce), and `assert_conforms`."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.config import Settings
from app.fhir.outcomes import FhirError
from app.fhir.packages import load_registry
from app.fhir.validation import clear_validators
from app.fhir.validation.policy import PAS_REQUEST_BUNDLE, check_inbound
from tests.conftest import FHIR_PACKAGES, INFERNO_FIXTURES
from tests.fhir.conftest import PAS_201, PAS_221
from tests.support.conformance import assert_conforms

Json = dict[str, Any]
INFERNO_PAS = INFERNO_FIXTURES / "davinci-pas-test-kit" / "extracted"


def settings(mode: str, packages: Path = FHIR_PACKAGES) -> Settings:
    return Settings.model_validate({"validation": mode, "ig_packages": packages})


def request_bundle() -> Json:
    package = load_registry(FHIR_PACKAGES).package("hl7.fhir.us.davinci-pas", "2.0.1")
    assert package is not None
    return copy.deepcopy(package.load("example/Bundle-ReferralAuthorizationBundleExample.json"))


def broken_bundle() -> Json:
    bundle = request_bundle()
    del bundle["entry"][0]["resource"]["insurer"]
    return bundle


def test_off_validates_nothing() -> None:
    assert check_inbound(broken_bundle(), settings("off")) == []


def test_warn_accepts_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="greenlight.validation"):
        issues = check_inbound(broken_bundle(), settings("warn"), prefer=PAS_201)
    assert any(
        i.severity == "error" and i.expression == ("Bundle.entry[0].resource.insurer",)
        for i in issues
    )
    assert all(i.severity != "information" for i in issues)
    assert "accepted inbound Bundle with 1 validation errors" in caplog.text


def test_enforce_rejects_with_422_and_an_outcome() -> None:
    with pytest.raises(FhirError) as caught:
        check_inbound(
            broken_bundle(), settings("enforce"), profile=PAS_REQUEST_BUNDLE, prefer=PAS_201
        )
    assert caught.value.status == 422
    outcome = caught.value.outcome
    assert outcome["resourceType"] == "OperationOutcome"
    issue = next(i for i in outcome["issue"] if i["severity"] == "error")
    assert issue["code"] == "required"
    assert issue["expression"] == ["Bundle.entry[0].resource.insurer"]


def test_enforce_accepts_a_valid_payload() -> None:
    issues = check_inbound(request_bundle(), settings("enforce"), prefer=PAS_201)
    assert all(i.severity == "warning" for i in issues)


def test_enforce_without_packages_fails_closed(tmp_path: Path) -> None:
    clear_validators()
    try:
        empty = settings("enforce", tmp_path / "nothing-here")
        for prefer in (PAS_201, None):
            with pytest.raises(FhirError) as caught:
                check_inbound(request_bundle(), empty, prefer=prefer)
            assert caught.value.status == 503
        assert (
            check_inbound(request_bundle(), settings("warn", tmp_path / "nothing"), prefer=PAS_201)
            == []
        )
    finally:
        clear_validators()


@pytest.mark.parametrize(
    "name",
    [
        "approval_pa_submit_request_payload.json",
        "denial_pa_submit_request_payload.json",
        "pended_pa_submit_request_payload.json",
        "pended_pa_inquire_request_payload.json",
    ],
)
def test_inferno_pas_201_requests_pass_enforce(name: str) -> None:
    """What the Inferno PAS server suite (v2.0.1) submits is accepted even in enforce mode."""
    bundle = orjson.loads((INFERNO_PAS / "v201" / name).read_bytes())
    issues = check_inbound(bundle, settings("enforce"), prefer=PAS_201)
    assert all(i.severity == "warning" for i in issues)


def test_inferno_pas_221_fixture_defects_are_reported() -> None:
    """Inferno's v2.2.1 submit fixtures still use the PAS 2.0.1 revenue code system
    (`https://www.nubc.org/revenue-code`); PAS 2.2.1 binds `.../CodeSystem/RevenueCodes`. With
    `enforce` they would be rejected: that is why the default is `warn`."""
    bundle = orjson.loads(
        (INFERNO_PAS / "v221" / "approval_pa_submit_request_payload.json").read_bytes()
    )
    issues = check_inbound(bundle, settings("warn"), prefer=PAS_221)
    errors = [i for i in issues if i.severity == "error"]
    assert [i.expression for i in errors] == [
        ("Bundle.entry[0].resource.item[0].revenue",),
        ("Bundle.entry[0].resource.item[1].revenue",),
    ]
    assert all("https://www.nubc.org/revenue-code#0105" in i.diagnostics for i in errors)


def test_assert_conforms_passes_and_fails_with_paths() -> None:
    result = assert_conforms(request_bundle(), PAS_REQUEST_BUNDLE, ig=PAS_201)
    assert result.ok
    with pytest.raises(AssertionError, match=r"Bundle\.entry\[0\]\.resource\.insurer"):
        assert_conforms(broken_bundle(), PAS_REQUEST_BUNDLE, ig=PAS_201)
