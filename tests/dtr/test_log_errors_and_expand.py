"""`Questionnaire/$log-questionnaire-errors` (DTR oper-1, the IG's example input) and
`ValueSet/$expand` (DTR oper-4, oper-5) for the value sets the payer's Questionnaires use."""

from __future__ import annotations

import tarfile
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import FHIR_PACKAGES
from tests.support.conformance import assert_conforms

GL = "http://greenlight.example.org/fhir"
LOG = "/Questionnaire/$log-questionnaire-errors"


def ig_example(name: str) -> dict[str, Any]:
    """An example of the DTR 2.0.1 package, read at test time."""
    with tarfile.open(FHIR_PACKAGES / "davinci_dtr_2.0.1.tgz") as archive:
        member = archive.extractfile(f"package/example/{name}")
        assert member is not None
        loaded: dict[str, Any] = orjson.loads(member.read())
        return loaded


@pytest.mark.requirement("DTR", "oper-1")
def test_log_questionnaire_errors_records_the_report(fhir: httpx.Client) -> None:
    body = ig_example("Parameters-LogQuestionnaireErrorsInputParamsExample.json")
    response = fhir.post(LOG, json=body)
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    message = outcome["issue"][0]["diagnostics"]
    assert "home-o2-std-questionnaire" in message
    event_id = message.rsplit("AuditEvent/", 1)[1]
    event = fhir.get(f"/AuditEvent/{event_id}").json()
    assert event["subtype"][0]["code"] == "log-questionnaire-errors"
    assert event["entity"][0]["what"]["display"].endswith("home-o2-std-questionnaire")


def test_log_questionnaire_errors_accepts_the_operation_definition_names(
    fhir: httpx.Client,
) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "Questionnaire", "valueCanonical": f"{GL}/Questionnaire/lumbar-mri|1.0.0"},
            {
                "name": "OperationOutcome",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "processing", "diagnostics": "x"}],
                },
            },
        ],
    }
    assert fhir.post(LOG, json=body).status_code == 200


def test_log_questionnaire_errors_needs_both_parts(fhir: httpx.Client) -> None:
    body = ig_example("Parameters-LogQuestionnaireErrorsInputParamsExample.json")
    body["parameter"] = body["parameter"][:1]
    response = fhir.post(LOG, json=body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.requirement("DTR", "oper-4")
@pytest.mark.requirement("DTR", "oper-5")
def test_expand_by_url(fhir: httpx.Client) -> None:
    response = fhir.get("/ValueSet/$expand", params={"url": f"{GL}/ValueSet/lumbar-red-flags"})
    assert response.status_code == 200, response.text
    valueset = response.json()
    expansion = valueset["expansion"]
    assert expansion["timestamp"] == datetime.now(UTC).date().isoformat()
    assert {"name": "activeOnly", "valueBoolean": True} in expansion["parameter"]
    assert [c["code"] for c in expansion["contains"]][:2] == ["none", "cauda-equina"]
    assert_conforms(valueset, "http://hl7.org/fhir/StructureDefinition/ValueSet")
    versioned = fhir.get(
        "/ValueSet/$expand",
        params={"url": f"{GL}/ValueSet/lumbar-red-flags", "valueSetVersion": "1.0.0"},
    )
    assert versioned.json()["expansion"]["contains"] == expansion["contains"]


def test_expand_post_and_instance(fhir: httpx.Client) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "url", "valueUri": f"{GL}/ValueSet/conventional-dmards"}],
    }
    posted = fhir.post("/ValueSet/$expand", json=body)
    assert posted.status_code == 200
    assert posted.json()["expansion"]["total"] == 4
    instance = fhir.get("/ValueSet/oxygen-test-types/$expand")
    assert instance.status_code == 200
    assert instance.json()["expansion"]["total"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"url": "http://example.org/ValueSet/unknown"},
        {"url": f"{GL}/ValueSet/lumbar-red-flags", "valueSetVersion": "9.9.9"},
    ],
)
def test_expand_unknown_value_set_is_404(fhir: httpx.Client, params: dict[str, str]) -> None:
    response = fhir.get("/ValueSet/$expand", params=params)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_expand_without_url_is_400(fhir: httpx.Client) -> None:
    response = fhir.get("/ValueSet/$expand")
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["url"]
