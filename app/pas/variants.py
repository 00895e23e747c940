"""Trigger variants of the Inferno PAS request Bundles: the edits that give A1, A3 and A4 here.

The Inferno kit's approval and denial payloads are identical, and its codes (X12 service type
`3`, HCPCS E1223) name no coverage topic, so as sent they answer NA (no authorization needed).
These functions make the variants documented in `app/pas/OUTCOMES.md`; they are used by the tests
and can write files for a tester to paste into Inferno:

    python -m app.pas.variants --out var/pas-variants \
        --fixtures ../shared/fixtures/inferno/davinci-pas-test-kit/extracted/v201
"""

from __future__ import annotations

import argparse
import copy
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

CPT = "http://www.ama-assn.org/go/cpt"
NPI = "http://hl7.org/fhir/sid/us-npi"
LUMBAR_MRI = "72148"  # lumbar-mri topic: auth needed, approved on documented therapy
SLEEVE_GASTRECTOMY = "43775"  # bariatric-surgery topic: excluded on the Silver HMO
GOLD_CARD_NPI = "1304582715"  # Dr. Priya Raman: gold-carded for lumbar MRI
CANCELLED_MEMBER = "GLH50744219"  # Kevin Brennan: coverage cancelled
UNKNOWN_MEMBER = "ZZ00000000"  # no member of the demo payer
LUMBAR_QUESTIONNAIRE = "http://greenlight.example.org/fhir/Questionnaire/lumbar-mri"

Bundle = dict[str, Any]


def _resources(bundle: Bundle, resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def _claim(bundle: Bundle) -> dict[str, Any]:
    claim: dict[str, Any] = bundle["entry"][0]["resource"]
    return claim


def _new_identifier(bundle: Bundle) -> None:
    identifier = dict(bundle.get("identifier") or {})
    identifier["value"] = f"GL-{uuid.uuid4().hex[:12]}"
    bundle["identifier"] = identifier


def with_service(bundle: Bundle, code: str, item: int = 0) -> Bundle:
    """The Bundle with `Claim.item[item].productOrService` set to a CPT code."""
    changed = copy.deepcopy(bundle)
    _claim(changed)["item"][item]["productOrService"] = {"coding": [{"system": CPT, "code": code}]}
    _new_identifier(changed)
    return changed


def with_practitioner_npi(bundle: Bundle, npi: str) -> Bundle:
    """The Bundle with every Practitioner's NPI replaced (the requester is the care team's)."""
    changed = copy.deepcopy(bundle)
    for practitioner in _resources(changed, "Practitioner"):
        practitioner["identifier"] = [
            {"system": NPI, "value": npi} if i.get("system") == NPI else i
            for i in practitioner.get("identifier") or []
        ]
    return changed


def with_member(bundle: Bundle, member_id: str) -> Bundle:
    """The Bundle with the member's ids (Coverage and Patient) replaced by `member_id`."""
    changed = copy.deepcopy(bundle)
    for coverage in _resources(changed, "Coverage"):
        coverage["subscriberId"] = member_id
        coverage["identifier"] = [{**i, "value": member_id} for i in coverage.get("identifier", [])]
    for patient in _resources(changed, "Patient"):
        patient["identifier"] = [{**i, "value": member_id} for i in patient.get("identifier", [])]
    _new_identifier(changed)
    return changed


def with_questionnaire_response(bundle: Bundle, therapy_weeks: int) -> Bundle:
    """The Bundle with a DTR QuestionnaireResponse for lumbar MRI as supporting information."""
    changed = copy.deepcopy(bundle)
    claim = _claim(changed)
    qr_id = str(uuid.uuid4())
    full_url = f"urn:uuid:{qr_id}"
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": qr_id,
        "questionnaire": f"{LUMBAR_QUESTIONNAIRE}|1.0.0",
        "status": "completed",
        "subject": copy.deepcopy(claim["patient"]),
        "authored": "2026-11-20T10:00:00Z",
        "item": [
            {
                "linkId": "presentation",
                "item": [{"linkId": "symptom-weeks", "answer": [{"valueInteger": 10}]}],
            },
            {
                "linkId": "conservative-therapy",
                "item": [
                    {
                        "linkId": "conservative-therapy-weeks",
                        "answer": [{"valueInteger": therapy_weeks}],
                    }
                ],
            },
        ],
    }
    changed["entry"].append({"fullUrl": full_url, "resource": response})
    infos = claim.setdefault("supportingInfo", [])
    sequence = max((int(i.get("sequence", 0)) for i in infos), default=0) + 1
    infos.append(
        {
            "sequence": sequence,
            "category": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes",
                        "code": "additionalInformation",
                    }
                ]
            },
            "valueReference": {"reference": full_url},
        }
    )
    _new_identifier(changed)
    return changed


# name -> (what it gives, how it is made from the approval (or pended) payload)
VARIANTS: dict[str, tuple[str, Callable[[Bundle], Bundle]]] = {
    "approve-gold-card": (
        "A1: lumbar MRI ordered by a gold-carded practitioner",
        lambda b: with_practitioner_npi(with_service(b, LUMBAR_MRI), GOLD_CARD_NPI),
    ),
    "approve-documented": (
        "A1: lumbar MRI with a DTR QuestionnaireResponse documenting 8 weeks of therapy",
        lambda b: with_questionnaire_response(with_service(b, LUMBAR_MRI), 8),
    ),
    "pend": (
        "A4: lumbar MRI without documentation (asks for it: CommunicationRequest and Task)",
        lambda b: with_service(b, LUMBAR_MRI),
    ),
    "pend-short-therapy": (
        "A4: lumbar MRI documenting only 3 weeks of therapy",
        lambda b: with_questionnaire_response(with_service(b, LUMBAR_MRI), 3),
    ),
    "deny-excluded": (
        "A3: sleeve gastrectomy, excluded from the member's Silver HMO benefit",
        lambda b: with_service(b, SLEEVE_GASTRECTOMY),
    ),
    "deny-inactive": (
        "A3: a member whose coverage is cancelled",
        lambda b: with_member(b, CANCELLED_MEMBER),
    ),
    "deny-unknown-member": (
        "A3 and ClaimResponse.error (AAA 75): no such member",
        lambda b: with_member(b, UNKNOWN_MEMBER),
    ),
}


def variant(name: str, bundle: Bundle) -> Bundle:
    """The named trigger variant of a PAS request Bundle."""
    return VARIANTS[name][1](bundle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the PAS trigger variants")
    parser.add_argument("--fixtures", type=Path, required=True, help="e.g. .../extracted/v201")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    source = orjson.loads((args.fixtures / "approval_pa_submit_request_payload.json").read_bytes())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (meaning, _make) in VARIANTS.items():
        target = args.out / f"{name}.json"
        target.write_bytes(orjson.dumps(variant(name, source), option=orjson.OPT_INDENT_2))
        print(f"{target}: {meaning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
