"""Sample charts for the CQL pre-population tests: for each topic, one chart where the evidence is
present, one where it is absent and one where it is contradictory (refuted, entered in error,
not done, cancelled, preliminary...).

Home oxygen's "present" chart is the Inferno DTR kit's own `pat015_bundle.json` (read from the
shared fixtures); no published fixture covers lumbar spine MRI or adalimumab, so those charts are
written here as FHIR R4 collection Bundles with US Core element choices. The execution date of
every test is `TODAY` so week counts are stable.
"""

from __future__ import annotations

from typing import Any

TODAY = "2025-06-01T00:00:00.000Z"

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

Resource = dict[str, Any]


def bundle(patient_id: str, *resources: Resource) -> Resource:
    """A collection Bundle holding the Patient and `resources` (each given the patient)."""
    patient: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"use": "official", "family": "Sample", "given": [patient_id]}],
        "gender": "female",
        "birthDate": "1972-04-18",
    }
    entries = [patient]
    for index, resource in enumerate(resources):
        item = dict(resource)
        item.setdefault("id", f"{patient_id}-{index + 1}")
        key = "patient" if item["resourceType"] == "AllergyIntolerance" else "subject"
        item[key] = {"reference": f"Patient/{patient_id}"}
        entries.append(item)
    return {
        "resourceType": "Bundle",
        "id": f"chart-{patient_id}",
        "type": "collection",
        "entry": [
            {"fullUrl": f"http://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in entries
        ],
    }


def condition(
    code: str,
    *,
    system: str = ICD10,
    onset: str | None = None,
    clinical: str = "active",
    verification: str = "confirmed",
) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if onset:
        resource["onsetDateTime"] = onset
    return resource


def procedure(
    code: str, performed: str, *, system: str = CPT, status: str = "completed"
) -> Resource:
    return {
        "resourceType": "Procedure",
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "performedDateTime": performed,
    }


def medication_request(
    code: str,
    authored: str,
    *,
    status: str = "active",
    intent: str = "order",
    supply_days: int | None = None,
) -> Resource:
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": intent,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
        "authoredOn": authored,
    }
    if supply_days is not None:
        resource["dispenseRequest"] = {
            "expectedSupplyDuration": {
                "value": supply_days,
                "unit": "days",
                "system": UCUM,
                "code": "d",
            }
        }
    return resource


def observation(
    code: str,
    value: float,
    unit: str,
    effective: str,
    *,
    system: str = LOINC,
    status: str = "final",
) -> Resource:
    return {
        "resourceType": "Observation",
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": effective,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def allergy(code: str, *, verification: str = "confirmed") -> Resource:
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": verification,
                }
            ]
        },
        "type": "intolerance",
        "code": {"coding": [{"system": RXNORM, "code": code}]},
    }


# ---- lumbar spine MRI ----------------------------------------------------------------------

LUMBAR_PRESENT = bundle(
    "lumbar-present",
    condition("M51.16", onset="2025-02-01"),  # disc disorder with radiculopathy (most recent)
    condition("M54.50", onset="2024-12-01"),  # low back pain, the earliest onset
    condition("M21.372", onset="2025-03-10"),  # foot drop: an objective deficit
    procedure("97110", "2025-03-01"),  # therapeutic exercise
    medication_request("7258", "2025-02-15"),  # naproxen: the earliest therapy
    procedure("72100", "2025-02-10"),  # lumbar radiographs
)

LUMBAR_ABSENT = bundle(
    "lumbar-absent",
    condition("J45.909", onset="2020-01-01"),  # asthma: nothing about the spine
)

LUMBAR_CONTRADICTORY = bundle(
    "lumbar-contradictory",
    condition("M54.50", onset="2024-11-01", verification="refuted"),
    condition("M48.062", onset="2025-01-15"),
    condition("G83.4", verification="refuted"),  # cauda equina ruled out
    condition("S32.009A", verification="entered-in-error"),  # no fracture after all
    condition("Z85.46"),  # history of prostate cancer: a real red flag
    condition("M21.371", clinical="resolved"),  # foot drop that resolved
    procedure("97110", "2024-10-01", status="entered-in-error"),
    procedure("97140", "2024-10-15", status="not-done"),
    medication_request("7258", "2024-09-01", status="cancelled"),
    medication_request("21949", "2025-04-01"),  # cyclobenzaprine: the only real therapy
    medication_request("5640", "2025-03-01", intent="proposal"),  # a proposal is not an order
    procedure("72148", "2025-05-20", status="not-done"),
    procedure("72131", "2025-05-01"),  # CT: the most recent real imaging
    procedure("72100", "2024-01-10"),
)

# ---- home oxygen ---------------------------------------------------------------------------

OXYGEN_ABSENT = bundle(
    "oxygen-absent",
    condition("M54.50", onset="2024-12-01"),
    observation("59408-5", 97, "%", "2025-05-01"),  # normal saturation: not qualifying
)

OXYGEN_CONTRADICTORY = bundle(
    "oxygen-contradictory",
    condition("J44.9", verification="entered-in-error"),
    condition("J84.112", onset="2024-02-01"),
    condition("R09.02", onset="2025-01-01"),
    observation("59408-5", 84, "%", "2025-05-20", status="entered-in-error"),
    observation("59408-5", 86, "%", "2025-05-25", status="preliminary"),
    observation("59409-3", 85, "%", "2025-05-26"),  # during oxygen treatment: never read
    observation("59417-6", 93, "%", "2025-05-01"),  # resting, not qualifying
    observation("252568001", 87, "%", "2025-04-12", system=SNOMED),  # sleep: qualifying
    observation("2703-7", 58, "mm[Hg]", "2025-04-20"),  # PaO2 above 55: not qualifying
)

# ---- adalimumab ----------------------------------------------------------------------------

ADALIMUMAB_PRESENT = bundle(
    "adalimumab-present",
    condition("M06.9", onset="2023-05-01"),
    medication_request("6851", "2024-06-01", status="completed", supply_days=90),
    medication_request("6851", "2024-09-01", status="stopped", supply_days=90),  # 26 weeks
    medication_request("5521", "2025-01-10", status="completed", supply_days=30),
    allergy("6851"),  # methotrexate intolerance
)

ADALIMUMAB_ABSENT = bundle(
    "adalimumab-absent",
    condition("E11.9", onset="2019-01-01"),
)

ADALIMUMAB_CONTRADICTORY = bundle(
    "adalimumab-contradictory",
    condition("L40.50", onset="2022-03-01"),
    condition("M06.9", verification="refuted"),
    medication_request("6851", "2024-01-01", status="entered-in-error", supply_days=180),
    medication_request("27169", "2025-02-01"),  # leflunomide, still active: 17 weeks
    medication_request("9524", "2025-04-01", intent="proposal"),
    allergy("6851", verification="refuted"),
)

# ---- blood gas study -----------------------------------------------------------------------


def pulse_oximetry(
    value: float,
    effective: str,
    *,
    flow: float | None = None,
    concentration: float | None = None,
    status: str = "final",
) -> Resource:
    """A US Core pulse oximetry Observation (59408-5 and 2708-6), with the inhaled oxygen flow
    rate (3151-8, L/min) and concentration (3150-0, %) components when given."""
    resource = observation("59408-5", value, "%", effective, status=status)
    resource["code"]["coding"].append({"system": LOINC, "code": "2708-6"})
    components = []
    for code, amount, unit in (("3151-8", flow, "L/min"), ("3150-0", concentration, "%")):
        if amount is not None:
            components.append(
                {
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "valueQuantity": {"value": amount, "unit": unit, "system": UCUM, "code": unit},
                }
            )
    if components:
        resource["component"] = components
    return resource


BLOOD_GAS_PRESENT = bundle(
    "blood-gas-present",
    condition("J44.9", onset="2019-03-01"),  # COPD, the earlier disease
    condition("D58.2", onset="2024-08-01"),  # a hemoglobin variant: oximetry unreliable
    condition("R09.02", onset="2025-05-01"),  # hypoxemia, a finding: not the indication
    pulse_oximetry(91, "2025-04-02", flow=0),
    pulse_oximetry(86, "2025-05-20", flow=2),  # the latest reading, on 2 L/min
)

BLOOD_GAS_ABSENT = bundle(
    "blood-gas-absent",
    condition("M54.50", onset="2024-12-01"),
    observation("8867-4", 72, "/min", "2025-05-01"),  # a heart rate, not an oximetry reading
)

BLOOD_GAS_CONTRADICTORY = bundle(
    "blood-gas-contradictory",
    condition("T58.91XA", verification="refuted"),  # carbon monoxide ruled out
    condition("D58.2", verification="entered-in-error"),
    condition("J96.12", onset="2023-01-10"),  # chronic hypercapnic failure: PaCO2 needed
    condition("J84.10", onset="2024-06-01", clinical="resolved"),
    pulse_oximetry(82, "2025-05-28", status="entered-in-error"),
    pulse_oximetry(85, "2025-05-25", flow=3, status="preliminary"),
    pulse_oximetry(89, "2025-05-10", concentration=21),  # on room air, by concentration
    pulse_oximetry(93, "2025-03-01", flow=2),
)
