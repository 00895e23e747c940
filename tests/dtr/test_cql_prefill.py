"""Every pre-population expression of the payer's Questionnaires, executed with cql-execution and
cql-exec-fhir (what DTR apps embed) over sample charts where the evidence is present, absent and
contradictory; each answer an item would receive is asserted.

Home oxygen's "present" chart is the Inferno DTR kit's pat015 bundle (its qualifying study is the
80 percent SpO2 on exercise of 2020-03-20; the resting, overnight and PaO2 results do not qualify).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import INFERNO_FIXTURES
from tests.dtr import patients
from tests.dtr.cql_tools import content, execute, node_ready
from tests.dtr.prefill import answer_values, expressions, simple

GL = "http://greenlight.example.org/fhir"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"
FLAG = f"{GL}/CodeSystem/lumbar-red-flags"
THERAPY = f"{GL}/CodeSystem/conservative-therapy"
CONDITION = f"{GL}/CodeSystem/oxygen-test-condition"
OUTCOME = f"{GL}/CodeSystem/dmard-trial-outcome"
REASON = f"{GL}/CodeSystem/blood-gas-reason"

PAT015 = orjson.loads(
    (INFERNO_FIXTURES / "davinci-dtr-test-kit" / "config" / "pat015_bundle.json").read_bytes()
)

# (questionnaire id, main library): {case: (chart, {(linkId, kind): expected answers})}
Expected = dict[tuple[str, str], list[Any]]
CASES: dict[tuple[str, str], dict[str, tuple[dict[str, Any], Expected]]] = {
    ("lumbar-mri", "LumbarMRIPrepopulation"): {
        "present": (
            patients.LUMBAR_PRESENT,
            {
                ("diagnosis", "initial"): [f"{ICD}|M51.16"],
                ("diagnosis", "candidate"): [f"{ICD}|M51.16", f"{ICD}|M54.50"],
                ("symptom-weeks", "initial"): [26],
                ("red-flags", "initial"): [],
                ("neurological-deficit", "initial"): [True],
                ("conservative-therapy-types", "initial"): [
                    f"{THERAPY}|physical-therapy",
                    f"{THERAPY}|nsaid",
                ],
                ("conservative-therapy-weeks", "initial"): [15],
                ("prior-imaging-done", "initial"): [True],
                ("prior-imaging-modality", "initial"): [f"{DCM}|DX"],
                ("prior-imaging-date", "initial"): ["2025-02-10"],
            },
        ),
        "absent": (patients.LUMBAR_ABSENT, {}),
        "contradictory": (
            patients.LUMBAR_CONTRADICTORY,
            {
                ("diagnosis", "initial"): [f"{ICD}|M48.062"],
                ("diagnosis", "candidate"): [f"{ICD}|M48.062"],
                ("symptom-weeks", "initial"): [19],
                ("red-flags", "initial"): [f"{FLAG}|malignancy"],
                ("neurological-deficit", "initial"): [],
                ("conservative-therapy-types", "initial"): [f"{THERAPY}|muscle-relaxant"],
                ("conservative-therapy-weeks", "initial"): [8],
                ("prior-imaging-done", "initial"): [True],
                ("prior-imaging-modality", "initial"): [f"{DCM}|CT"],
                ("prior-imaging-date", "initial"): ["2025-05-01"],
            },
        ),
    },
    ("home-oxygen", "HomeOxygenPrepopulation"): {
        "present": (
            PAT015,
            {
                ("diagnosis", "initial"): [f"{ICD}|J44.9"],
                ("diagnosis", "candidate"): [f"{ICD}|J44.9", f"{ICD}|R09.02"],
                ("test-type", "initial"): [f"{LOINC}|59408-5"],
                ("test-result", "initial"): [80],
                ("test-date", "initial"): ["2020-03-20"],
                ("test-condition", "initial"): [f"{CONDITION}|exertion"],
            },
        ),
        "absent": (patients.OXYGEN_ABSENT, {}),
        "contradictory": (
            patients.OXYGEN_CONTRADICTORY,
            {
                ("diagnosis", "initial"): [f"{ICD}|J84.112"],
                ("diagnosis", "candidate"): [f"{ICD}|J84.112", f"{ICD}|R09.02"],
                ("test-type", "initial"): [f"{LOINC}|59408-5"],
                ("test-result", "initial"): [87],
                ("test-date", "initial"): ["2025-04-12"],
                ("test-condition", "initial"): [f"{CONDITION}|sleep"],
            },
        ),
    },
    ("blood-gas", "BloodGasPrepopulation"): {
        "present": (
            patients.BLOOD_GAS_PRESENT,
            {
                ("indication", "initial"): [f"{ICD}|D58.2"],
                ("indication", "candidate"): [f"{ICD}|J44.9", f"{ICD}|D58.2", f"{ICD}|R09.02"],
                ("spo2-result", "initial"): [86],
                ("spo2-date", "initial"): ["2025-05-20"],
                ("spo2-on-oxygen", "initial"): [True],
                ("oximetry-limitation", "initial"): [f"{REASON}|dyshemoglobinemia"],
            },
        ),
        "absent": (patients.BLOOD_GAS_ABSENT, {}),
        "contradictory": (
            patients.BLOOD_GAS_CONTRADICTORY,
            {
                ("indication", "initial"): [f"{ICD}|J96.12"],
                ("indication", "candidate"): [f"{ICD}|J96.12"],
                ("spo2-result", "initial"): [89],
                ("spo2-date", "initial"): ["2025-05-10"],
                ("spo2-on-oxygen", "initial"): [False],
                ("oximetry-limitation", "initial"): [f"{REASON}|ventilation"],
            },
        ),
    },
    ("adalimumab", "AdalimumabPrepopulation"): {
        "present": (
            patients.ADALIMUMAB_PRESENT,
            {
                ("diagnosis", "initial"): [f"{ICD}|M06.9"],
                ("diagnosis", "candidate"): [f"{ICD}|M06.9"],
                ("dmards-tried", "initial"): [f"{RX}|6851", f"{RX}|5521"],
                ("dmard-trial-weeks", "initial"): [26],
                ("dmard-trial-outcome", "initial"): [f"{OUTCOME}|intolerance"],
            },
        ),
        "absent": (patients.ADALIMUMAB_ABSENT, {}),
        "contradictory": (
            patients.ADALIMUMAB_CONTRADICTORY,
            {
                ("diagnosis", "initial"): [f"{ICD}|L40.50"],
                ("diagnosis", "candidate"): [f"{ICD}|L40.50"],
                ("dmards-tried", "initial"): [f"{RX}|27169"],
                ("dmard-trial-weeks", "initial"): [17],
                ("dmard-trial-outcome", "initial"): [],
            },
        ),
    },
}


def prefill_answers(
    questionnaire: dict[str, Any], results: dict[str, Any]
) -> dict[tuple[str, str], list[Any]]:
    """Each item expression's answers, as a DTR client would fill them in."""
    return {
        (item["linkId"], kind): simple(answer_values(item["type"], results[define]))
        for item, kind, _library, define in expressions(questionnaire)
    }


@pytest.mark.requirement("DTR", "spec-54")
@pytest.mark.parametrize("form", sorted(CASES), ids=lambda form: form[0])
def test_prefill_answers(form: tuple[str, str]) -> None:
    node_ready()
    questionnaire_id, library = form
    questionnaire = content().questionnaire(f"{GL}/Questionnaire/{questionnaire_id}")
    assert questionnaire is not None
    cases = CASES[form]
    results = execute(library, {name: chart for name, (chart, _) in cases.items()})
    checked = 0
    for name, (_chart, expected) in cases.items():
        answers = prefill_answers(questionnaire, results[name])
        assert set(answers) >= set(expected), f"{name}: an expected item has no expression"
        for key, found in answers.items():
            assert found == expected.get(key, []), f"{questionnaire_id} {name} {key}"
            checked += 1
    expression_count = sum(1 for _ in expressions(questionnaire))
    assert checked == expression_count * len(cases)


def test_prefill_assertion_count() -> None:
    """How many answers the suite asserts (reported in the DTR closing note)."""
    total = 0
    for (questionnaire_id, _library), cases in CASES.items():
        questionnaire = content().questionnaire(f"{GL}/Questionnaire/{questionnaire_id}")
        assert questionnaire is not None
        total += sum(1 for _ in expressions(questionnaire)) * len(cases)
    assert total == 81
