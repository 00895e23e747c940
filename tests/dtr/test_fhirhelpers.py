"""The project's own FHIRHelpers (questionnaires/_shared/FHIRHelpers.cql) against the FHIRHelpers
Library that ships in the Inferno DTR kit's respiratory-assist-device package (4.0.0, read from
the shared fixtures at test time): the same probe library is translated against each, executed
over the same chart, and the conversions must agree.

Where the two differ on purpose the test says so: the kit's 4.0.0 ToQuantity takes the human
`unit` text as the CQL unit, so a Quantity displayed as "mm Hg" (UCUM code `mm[Hg]`) stops
cql-execution with "Invalid UCUM unit"; ours takes the UCUM `code`. Only ours has ToRatio and the
calendar-unit mapping. Our library must also cover every conversion the
FHIR 4.0.1 model info declares, or implicit conversions would fail to translate.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest

from tests.conftest import INFERNO_FIXTURES
from tests.dtr.cql_tools import SHARED, TOOLS, execute, node_ready, translate_sources

PACKAGE = (
    INFERNO_FIXTURES
    / "davinci-dtr-test-kit"
    / "fixtures"
    / "respiratory_assist_device"
    / "questionnaire_package.json"
)
UCUM = "http://unitsofmeasure.org"

PROBE = """library HelpersProbe version '1.0.0'
using FHIR version '{fhir}'
include FHIRHelpers version '{helpers}' called FHIRHelpers
context Patient
define function Obs(name String): singleton from ([Observation] O where O.id = name)
define "Quantity": FHIRHelpers.ToQuantity(Obs('quantity').value as FHIR.Quantity)
define "Range": FHIRHelpers.ToInterval(Obs('range').value as FHIR.Range)
define "Period": FHIRHelpers.ToInterval(Obs('period').effective as FHIR.Period)
define "Code": FHIRHelpers.ToCode(First(Obs('quantity').code.coding))
define "Concept": FHIRHelpers.ToConcept(Obs('quantity').code)
define "Status": FHIRHelpers.ToString(Obs('quantity').status)
define "String": FHIRHelpers.ToString(Obs('string').value as FHIR.string)
define "Boolean": FHIRHelpers.ToBoolean(Obs('boolean').value as FHIR.boolean)
define "Integer": FHIRHelpers.ToInteger(Obs('integer').value as FHIR.integer)
define "DateTime": FHIRHelpers.ToDateTime(Obs('datetime').value as FHIR.dateTime)
define "Instant": FHIRHelpers.ToDateTime(Obs('quantity').issued)
define "Time": FHIRHelpers.ToTime(Obs('time').value as FHIR.time)
define "Date": FHIRHelpers.ToDate(Patient.birthDate)
define "Gender": FHIRHelpers.ToString(Patient.gender)
define "Decimal": FHIRHelpers.ToDecimal((Obs('quantity').value as FHIR.Quantity).value)
define "Implicit":
  (([Observation] O where O.id != 'pressure') P
    where P.status = 'final' and (P.value as Quantity) > 50 '%'
    return P.id)
"""
SAME = [
    "Quantity",
    "Range",
    "Period",
    "Code",
    "Concept",
    "Status",
    "String",
    "Boolean",
    "Integer",
    "DateTime",
    "Instant",
    "Time",
    "Date",
    "Gender",
    "Decimal",
    "Implicit",
]


def _observation(obs_id: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "59408-5",
                    "display": "Oxygen saturation in Arterial blood by Pulse oximetry",
                }
            ],
            "text": "SpO2",
        },
        "subject": {"reference": "Patient/probe"},
        **elements,
    }


CHART = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"resource": r}
        for r in [
            {
                "resourceType": "Patient",
                "id": "probe",
                "gender": "female",
                "birthDate": "1961-08-14",
            },
            _observation(
                "quantity",
                issued="2025-05-02T09:30:00.000Z",
                valueQuantity={"value": 87.5, "unit": "%", "system": UCUM, "code": "%"},
            ),
            _observation(
                "pressure",
                valueQuantity={"value": 54, "unit": "mm Hg", "system": UCUM, "code": "mm[Hg]"},
            ),
            _observation(
                "range",
                valueRange={
                    "low": {"value": 88, "unit": "%", "system": UCUM, "code": "%"},
                    "high": {"value": 92, "unit": "%", "system": UCUM, "code": "%"},
                },
            ),
            _observation(
                "period",
                effectivePeriod={"start": "2025-04-01T22:00:00Z", "end": "2025-04-02T06:00:00Z"},
                valueBoolean=True,
            ),
            _observation("string", valueString="room air"),
            _observation("boolean", valueBoolean=False),
            _observation("integer", valueInteger=4),
            _observation("datetime", valueDateTime="2025-03-05T08:15:00-05:00"),
            _observation("time", valueTime="07:45:00"),
        ]
    ],
}


def _kit_helpers() -> str:
    package = orjson.loads(PACKAGE.read_bytes())
    library = next(
        e["resource"] for e in package["entry"] if e["resource"].get("name") == "FHIRHelpers-4.0.0"
    )
    cql = next(c for c in library["content"] if c["contentType"] == "text/cql")
    return base64.b64decode(cql["data"]).decode()


UNIT_TEXT = """
define "Quantity unit text": FHIRHelpers.ToQuantity(Obs('pressure').value as FHIR.Quantity)
"""


def _run(helpers_cql: str, fhir: str, helpers: str, extra: str = "") -> dict[str, Any]:
    probe = PROBE.format(fhir=fhir, helpers=helpers) + extra
    translated = translate_sources(
        {"FHIRHelpers": helpers_cql, "HelpersProbe": probe}, ["HelpersProbe", "FHIRHelpers"]
    )
    assert translated["errors"] == {}
    results = execute(
        "HelpersProbe", {"probe": CHART}, libraries=translated["elm"], fhir_version=fhir
    )
    return results["probe"]


def test_our_fhirhelpers_agrees_with_the_kit_library() -> None:
    node_ready()
    ours_cql = (SHARED / "FHIRHelpers.cql").read_text(encoding="utf-8")
    ours = _run(ours_cql, "4.0.1", "4.0.1", UNIT_TEXT)
    theirs = _run(_kit_helpers(), "4.0.0", "4.0.0")
    for name in SAME:
        assert ours[name] == theirs[name], name
    assert ours["Quantity"] == {"Quantity": {"value": 87.5, "unit": "%"}}
    assert ours["Implicit"] == [{"FHIR": {"value": "quantity"}}]
    assert ours["Code"]["Code"]["code"] == "59408-5"
    assert ours["Period"]["Interval"]["lowClosed"] is True
    # the deliberate difference: the UCUM code, not the display text, is the CQL unit
    assert ours["Quantity unit text"] == {"Quantity": {"value": 54, "unit": "mm[Hg]"}}
    with pytest.raises(AssertionError, match="Invalid UCUM unit: 'mm Hg'"):
        _run(_kit_helpers(), "4.0.0", "4.0.0", UNIT_TEXT)


def test_our_fhirhelpers_covers_every_model_info_conversion() -> None:
    model_info = (
        TOOLS / "node_modules" / "cql-exec-fhir" / "lib" / "modelInfos" / "fhir-modelinfo-4.0.1.xml"
    )
    node_ready()
    conversions = set(
        re.findall(
            r'<conversionInfo functionName="FHIRHelpers\.(\w+)" fromType="FHIR\.([\w.]+)"',
            model_info.read_text(encoding="utf-8"),
        )
    )
    elm = orjson.loads((SHARED / "FHIRHelpers.json").read_bytes())
    defined = {
        (d["name"], d["operand"][0]["operandTypeSpecifier"]["name"].split("}")[-1])
        for d in elm["library"]["statements"]["def"]
        if d.get("type") == "FunctionDef"
    }
    assert len(conversions) == 264
    assert conversions <= defined, sorted(conversions - defined)[:10]
