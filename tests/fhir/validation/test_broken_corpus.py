"""Deliberately broken variants of the IG examples: each must fail with the expected error.

Every variant starts from a real example of the CRD, DTR or PAS package (read at test time),
breaks one thing, and names the error the validator must report: the issue code, the exact
`expression` path and a fragment of the diagnostics. Categories: a missing required element, a
wrong fixed or pattern value, an unknown slice of a closed slicing, a bad code in a required
binding, a failed invariant and a dangling reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.fhir.packages import load_registry
from app.fhir.validation import validator_for
from tests.conftest import FHIR_PACKAGES
from tests.fhir.conftest import CRD_201, DTR_201, PAS_201, PAS_221

Json = dict[str, Any]
PAS_REQ = "example/Bundle-ReferralAuthorizationBundleExample.json"
PAS_HOME = "example/Bundle-HomecareAuthorizationBundleExample.json"
PAS_RESP = "example/Bundle-ReferralAuthorizationResponseBundleExample.json"
PAS_INQ = "example/Bundle-PASClaimInquiryBundleExample.json"
CRD_ANNOTATED = "example/MedicationRequest-annotated-example.json"
DTR_QR = "example/QuestionnaireResponse-home-o2-questionnaireresponse.json"
DTR_QR_BUNDLE = "example/Bundle-home-o2-questionnaireresponse-bundle.json"
DTR_QPACKAGE = "example/Bundle-home-o2-questionnairepackage-bundle.json"
DTR_LOG_ERRORS = "example/Parameters-LogQuestionnaireErrorsInputParamsExample.json"
SPEC_13 = "PAS spec-13"


@dataclass(frozen=True)
class Variant:
    id: str
    kind: str
    package: str
    example: str
    mutate: Callable[[Json], Any]
    code: str
    path: str
    message: str


def claim(doc: Json) -> Json:
    resource: Json = doc["entry"][0]["resource"]
    return resource


def coverage_info(doc: Json) -> list[Json]:
    extensions: list[Json] = doc["extension"][0]["extension"]
    return extensions


def sub_extension(doc: Json, url: str) -> Json:
    return next(e for e in coverage_info(doc) if e["url"] == url)


def drop_sub_extension(doc: Json, url: str) -> None:
    doc["extension"][0]["extension"] = [e for e in coverage_info(doc) if e["url"] != url]


def item_extension(doc: Json, index: int, suffix: str) -> Json:
    return next(e for e in claim(doc)["item"][index]["extension"] if e["url"].endswith(suffix))


def move_first_entry_last(doc: Json) -> None:
    doc["entry"].append(doc["entry"].pop(0))


def set_in(path: list[Any], value: Any) -> Callable[[Json], None]:
    def mutate(doc: Json) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def delete(path: list[Any]) -> Callable[[Json], None]:
    def mutate(doc: Json) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


C0 = "Bundle.entry[0].resource"

VARIANTS = [
    # ---------------------------------------------------------------- missing required element
    Variant(
        "pas-bundle-timestamp",
        "missing",
        PAS_201,
        PAS_REQ,
        delete(["timestamp"]),
        "required",
        "Bundle.timestamp",
        "minimum required = 1, but only found 0",
    ),
    Variant(
        "pas-bundle-identifier",
        "missing",
        PAS_221,
        PAS_REQ,
        delete(["identifier"]),
        "required",
        "Bundle.identifier",
        "minimum required = 1",
    ),
    Variant(
        "pas-claim-insurer",
        "missing",
        PAS_201,
        PAS_REQ,
        delete(["entry", 0, "resource", "insurer"]),
        "required",
        f"{C0}.insurer",
        "Claim.insurer: minimum required = 1",
    ),
    Variant(
        "pas-claim-item",
        "missing",
        PAS_221,
        PAS_REQ,
        delete(["entry", 0, "resource", "item"]),
        "required",
        f"{C0}.item",
        "Claim.item: minimum required = 1",
    ),
    Variant(
        "pas-entry-fullurl",
        "missing",
        PAS_201,
        PAS_REQ,
        delete(["entry", 1, "fullUrl"]),
        "required",
        "Bundle.entry[1].fullUrl",
        "Bundle.entry.fullUrl: minimum required = 1",
    ),
    Variant(
        "pas-claim-slice-missing",
        "missing",
        PAS_201,
        PAS_REQ,
        lambda d: d["entry"].pop(0),
        "required",
        "Bundle.entry",
        "Slice 'Claim' of Bundle.entry: minimum required = 1",
    ),
    Variant(
        "pas-response-outcome",
        "missing",
        PAS_201,
        PAS_RESP,
        delete(["entry", 0, "resource", "outcome"]),
        "required",
        f"{C0}.outcome",
        "ClaimResponse.outcome: minimum required = 1",
    ),
    Variant(
        "crd-coverage-info-coverage",
        "missing",
        CRD_201,
        CRD_ANNOTATED,
        lambda d: drop_sub_extension(d, "coverage"),
        "required",
        "MedicationRequest.extension[0].extension",
        "Slice 'coverage' of Extension.extension: minimum required = 1, but only found 0",
    ),
    Variant(
        "dtr-qr-status",
        "missing",
        DTR_201,
        DTR_QR,
        delete(["status"]),
        "required",
        "QuestionnaireResponse.status",
        "minimum required = 1",
    ),
    # ---------------------------------------------------------------- wrong fixed / pattern value
    Variant(
        "pas-claim-use",
        "fixed",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "use"], "claim"),
        "value",
        f"{C0}.use",
        "does not match the pattern 'preauthorization'",
    ),
    Variant(
        "pas-claim-status",
        "fixed",
        PAS_221,
        PAS_REQ,
        set_in(["entry", 0, "resource", "status"], "draft"),
        "value",
        f"{C0}.status",
        "does not match the pattern 'active'",
    ),
    Variant(
        "pas-insurance-focal",
        "fixed",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "insurance", 0, "focal"], False),
        "value",
        f"{C0}.insurance[0].focal",
        "does not match the pattern True",
    ),
    Variant(
        "pas-bundle-type",
        "fixed",
        PAS_201,
        PAS_REQ,
        set_in(["type"], "searchset"),
        "value",
        "Bundle.type",
        "does not match the pattern 'collection'",
    ),
    Variant(
        "pas-response-use",
        "fixed",
        PAS_221,
        PAS_RESP,
        set_in(["entry", 0, "resource", "use"], "claim"),
        "value",
        f"{C0}.use",
        "does not match the pattern 'preauthorization'",
    ),
    Variant(
        "pas-careteam-scope",
        "fixed",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "careTeam", 0, "extension", 0, "valueBoolean"], "yes"),
        "structure",
        f"{C0}.careTeam[0].extension[0].value.ofType(boolean)",
        "wrong JSON type",
    ),
    # ---------------------------------------------------------------- closed slicing
    Variant(
        "pas-cert-date-type",
        "closed-slice",
        PAS_221,
        PAS_INQ,
        lambda d: (
            item_extension(d, 1, "itemCertificationIssueDate").update(
                {"valueDateTime": "2019-07-01T10:00:00Z"}
            )
            or item_extension(d, 1, "itemCertificationIssueDate").pop("valueDate")
        ),
        "structure",
        f"{C0}.item[1].extension[2].value.ofType(dateTime)",
        "and that slicing is closed",
    ),
    Variant(
        "pas-cert-effective-type",
        "closed-slice",
        PAS_201,
        PAS_INQ,
        lambda d: (
            item_extension(d, 1, "itemCertificationEffectiveDate").update(
                {"valueString": "July 2019"}
            )
            or item_extension(d, 1, "itemCertificationEffectiveDate").pop("valueDate")
        ),
        "structure",
        f"{C0}.item[1].extension[3].value.ofType(string)",
        "it matches no slice of Extension.value[x], and that slicing is closed",
    ),
    Variant(
        "pas-serviced-type",
        "closed-slice",
        PAS_221,
        PAS_REQ,
        lambda d: claim(d)["item"][0].update({"servicedDateTime": "2005-05-02T10:00:00Z"}),
        "structure",
        f"{C0}.item[0].serviced.ofType(dateTime)",
        "it matches no slice of Claim.item.serviced[x], and that slicing is closed",
    ),
    Variant(
        "pas-subscription-content-type",
        "closed-slice",
        PAS_221,
        "example/Subscription-PASSubscriptionExample.json",
        set_in(
            ["channel", "_payload", "extension", 0],
            {
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                "backport-payload-content",
                "valueString": "full-resource",
            },
        ),
        "structure",
        "Subscription.channel.payload.extension[0].value.ofType(string)",
        "and that slicing is closed",
    ),
    Variant(
        "pas-inquiry-cert-expiry-type",
        "closed-slice",
        PAS_221,
        PAS_INQ,
        lambda d: (
            item_extension(d, 1, "itemCertificationExpirationDate").update(
                {"valueInstant": "2019-07-31T00:00:00Z"}
            )
            or item_extension(d, 1, "itemCertificationExpirationDate").pop("valueDate")
        ),
        "structure",
        f"{C0}.item[1].extension[4].value.ofType(instant)",
        "and that slicing is closed",
    ),
    # ---------------------------------------------------------------- bad code, required binding
    Variant(
        "pas-claim-status-code",
        "binding",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "status"], "approved"),
        "code-invalid",
        f"{C0}.status",
        "is not in the value set http://hl7.org/fhir/ValueSet/fm-status",
    ),
    Variant(
        "pas-bundle-type-code",
        "binding",
        PAS_221,
        PAS_REQ,
        set_in(["type"], "pile"),
        "code-invalid",
        "Bundle.type",
        "http://hl7.org/fhir/ValueSet/bundle-type",
    ),
    Variant(
        "pas-claim-type-code",
        "binding",
        PAS_221,
        PAS_REQ,
        set_in(["entry", 0, "resource", "type", "coding", 0, "code"], "dental-ish"),
        "code-invalid",
        f"{C0}.type",
        "http://hl7.org/fhir/us/davinci-pas/ValueSet/ClaimTypes",
    ),
    Variant(
        "crd-covered-code",
        "binding",
        CRD_201,
        CRD_ANNOTATED,
        lambda d: sub_extension(d, "covered").update({"valueCode": "maybe"}),
        "code-invalid",
        "MedicationRequest.extension[0].extension[1].value.ofType(code)",
        "http://hl7.org/fhir/us/davinci-crd/ValueSet/coverageInfo",
    ),
    Variant(
        "crd-pa-needed-code",
        "binding",
        CRD_201,
        CRD_ANNOTATED,
        lambda d: sub_extension(d, "pa-needed").update({"valueCode": "perhaps"}),
        "code-invalid",
        "MedicationRequest.extension[0].extension[2].value.ofType(code)",
        "http://hl7.org/fhir/us/davinci-crd/ValueSet/coveragePaDetail",
    ),
    Variant(
        "dtr-qr-status-code",
        "binding",
        DTR_201,
        DTR_QR,
        set_in(["status"], "finished"),
        "code-invalid",
        "QuestionnaireResponse.status",
        "http://hl7.org/fhir/ValueSet/questionnaire-answers-status",
    ),
    Variant(
        "crd-appointment-status",
        "binding",
        CRD_201,
        "example/Appointment-example.json",
        set_in(["status"], "sleeping"),
        "code-invalid",
        "Appointment.status",
        "http://hl7.org/fhir/ValueSet/appointmentstatus",
    ),
    # ---------------------------------------------------------------- failed invariant
    Variant(
        "pas-claim-first",
        "invariant",
        PAS_221,
        PAS_REQ,
        move_first_entry_last,
        "invariant",
        "Bundle",
        "ClaimFirst",
    ),
    Variant(
        "dtr-questionnaire-first",
        "invariant",
        DTR_201,
        DTR_QPACKAGE,
        lambda d: d["entry"].insert(
            0,
            {
                "fullUrl": "http://example.org/fhir/Patient/examplepatient",
                "resource": _load(DTR_201, "example/Patient-examplepatient.json"),
            },
        ),
        "invariant",
        "Bundle",
        "dtrb-1",
    ),
    Variant(
        "crd-satisfied-pa-id",
        "invariant",
        CRD_201,
        CRD_ANNOTATED,
        lambda d: drop_sub_extension(d, "satisfied-pa-id"),
        "invariant",
        "MedicationRequest.extension[0]",
        "crd-ci-q5",
    ),
    Variant(
        "crd-contained-reference",
        "invariant",
        CRD_201,
        CRD_ANNOTATED,
        lambda d: sub_extension(d, "response").update({"valueReference": {"reference": "#nope"}}),
        "invariant",
        "MedicationRequest.extension[0].extension[10].value.ofType(Reference)",
        "ref-1",
    ),
    Variant(
        "pas-full-date-rule",
        "invariant",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "diagnosis", 0, "extension", 0, "valueDate"], "2021-05"),
        "invariant",
        f"{C0}.diagnosis[0].extension[0].value.ofType(date)",
        "FullDateRule",
    ),
    Variant(
        "pas-duplicate-fullurl",
        "invariant",
        PAS_201,
        PAS_REQ,
        lambda d: d["entry"][2].update({"fullUrl": d["entry"][1]["fullUrl"]}),
        "invariant",
        "Bundle",
        "bdl-7",
    ),
    Variant(
        "dtr-log-errors-needs-context",
        "invariant",
        DTR_201,
        DTR_LOG_ERRORS,
        lambda d: d["parameter"].pop(0),
        "invariant",
        "Parameters",
        "dtr-1",
    ),
    Variant(
        "pas-extension-value-and-children",
        "invariant",
        PAS_201,
        PAS_REQ,
        lambda d: claim(d)["extension"][0].update(
            {"extension": [{"url": "x", "valueString": "y"}]}
        ),
        "invariant",
        f"{C0}.extension[0]",
        "ext-1",
    ),
    Variant(
        "pas-empty-element",
        "invariant",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "priority"], {}),
        "invariant",
        f"{C0}.priority",
        "ele-1",
    ),
    # ---------------------------------------------------------------- dangling reference
    Variant(
        "pas-dangling-patient",
        "reference",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "patient", "reference"], "Patient/Nobody"),
        "not-found",
        f"{C0}.patient.reference",
        SPEC_13,
    ),
    Variant(
        "pas-dangling-coverage",
        "reference",
        PAS_221,
        PAS_REQ,
        lambda d: d["entry"].pop(3),
        "not-found",
        f"{C0}.insurance[0].coverage.reference",
        SPEC_13,
    ),
    Variant(
        "pas-inquiry-dangling-insurer",
        "reference",
        PAS_221,
        PAS_INQ,
        lambda d: d["entry"].pop(2),
        "not-found",
        f"{C0}.insurer.reference",
        SPEC_13,
    ),
    Variant(
        "dtr-qr-bundle-urn",
        "reference",
        DTR_201,
        DTR_QR_BUNDLE,
        set_in(
            ["entry", 0, "resource", "subject", "reference"],
            "urn:uuid:3f1d5a06-2f8a-4b4e-9f43-6f0c5d6b2a11",
        ),
        "not-found",
        f"{C0}.subject.reference",
        "cannot be resolved in the Bundle",
    ),
    Variant(
        "pas-reference-wrong-type",
        "reference",
        PAS_201,
        PAS_REQ,
        set_in(["entry", 0, "resource", "insurer", "reference"], "Patient/SubscriberExample"),
        "structure",
        f"{C0}.insurer.reference",
        "Reference to Patient is not allowed here",
    ),
]


def _load(package_id: str, filename: str) -> Json:
    registry = load_registry(FHIR_PACKAGES)
    name, _, version = package_id.partition("#")
    package = registry.package(name, version)
    assert package is not None
    return copy.deepcopy(package.load(filename))


def test_corpus_covers_every_category() -> None:
    kinds = {v.kind for v in VARIANTS}
    assert kinds == {"missing", "fixed", "closed-slice", "binding", "invariant", "reference"}
    assert len(VARIANTS) >= 30
    assert len({v.id for v in VARIANTS}) == len(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_broken_variant_fails_as_expected(variant: Variant) -> None:
    document = _load(variant.package, variant.example)
    validator = validator_for(FHIR_PACKAGES, variant.package)
    assert validator.validate(document).ok, "the unbroken example must be valid"
    variant.mutate(document)
    result = validator.validate(document)
    matching = [
        issue
        for issue in result.errors
        if issue.code == variant.code
        and issue.expression == (variant.path,)
        and variant.message in issue.diagnostics
    ]
    assert matching, (
        f"expected {variant.code} at {variant.path} ~ {variant.message!r}:\n{result.describe()}"
    )
