"""The benchmark scenarios: what each one sends, what it expects back, and whether it is signed.

A scenario is the same HTTP request for both targets (Greenlight and the bare app); only the port
differs. `patient-read` reads the Patient the harness created while seeding.

The `crd` scenarios are CDS Hooks order-sign calls (`bench/crd.py`): every request carries a
fresh signed JWT (Greenlight refuses a replayed `jti`), so their requests come from a pool the
harness signs before each run instead of one fixed request.

The `dtr` scenarios are FHIR operations (`bench/dtr.py`) whose bodies the harness builds while
seeding: `dtr-next-question` loads a follow-up step, so its body holds Greenlight's own answer to
the first step.

The `pas` scenario is PAS `Claim/$submit` (`bench/pas.py`): every request must be a new
submission (a resent Bundle gets its stored answer), so, like the `crd` ones, its requests come
from a pool of fresh identifiers written before each run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from bench import crd, dtr, pas

FHIR_JSON = "application/fhir+json"

# A realistic US Core-shaped Patient (~1 KB on the wire), the body of `patient-create`.
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
    "identifier": [
        {
            "use": "usual",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MB",
                        "display": "Member Number",
                    }
                ]
            },
            "system": "http://example.org/payer/member-id",
            "value": "BENCH-0001",
        }
    ],
    "active": True,
    "name": [{"use": "official", "family": "Benchmark", "given": ["Bea", "Q."]}],
    "telecom": [
        {"system": "phone", "value": "555-0100", "use": "home"},
        {"system": "email", "value": "bea.benchmark@example.org"},
    ],
    "gender": "female",
    "birthDate": "1970-04-12",
    "address": [
        {
            "use": "home",
            "line": ["1 Loopback Way", "Apt 127"],
            "city": "Localhost",
            "state": "MA",
            "postalCode": "01234",
            "country": "US",
        }
    ],
    "maritalStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                "code": "M",
                "display": "Married",
            }
        ]
    },
    "communication": [
        {
            "language": {
                "coding": [{"system": "urn:ietf:bcp:47", "code": "en-US", "display": "English"}]
            },
            "preferred": True,
        }
    ],
}

PATIENT_BYTES = orjson.dumps(PATIENT)


@dataclass(frozen=True)
class Scenario:
    """One request shape, sent over and over by every virtual client."""

    name: str
    method: str
    # The path; `{patient_id}` is replaced with the id of the seeded Patient.
    path: str
    expected_status: int
    # Whether the request carries `Authorization: Bearer <token>` when the bench runs with auth.
    authenticated: bool
    body: bytes = b""
    description: str = ""
    # `fhir`: one fixed request (`request_bytes`); `crd`: pooled order-sign calls (`bench/crd.py`);
    # `dtr`: one fixed request whose body is built while seeding (`bench/dtr.py`); `pas`: pooled
    # `Claim/$submit` calls, a fresh Bundle and Claim identifier each (`bench/pas.py`).
    kind: Literal["fhir", "crd", "dtr", "pas"] = "fhir"
    # crd: a new ServiceRequest id per request (Greenlight writes a new coverage assertion each
    # time) instead of the same order (its stored assertion is reused, CRD resp-36).
    distinct_orders: bool = False

    def resolved_path(self, patient_id: str) -> str:
        return self.path.replace("{patient_id}", patient_id)

    def request_bytes(
        self,
        *,
        host: str,
        port: int,
        patient_id: str,
        token: str | None,
        body: bytes | None = None,
    ) -> bytes:
        """The complete HTTP/1.1 keep-alive request, built once and written as is (`body`
        replaces the scenario's own, for the bodies built while seeding)."""
        body = self.body if body is None else body
        lines = [
            f"{self.method} {self.resolved_path(patient_id)} HTTP/1.1",
            f"Host: {host}:{port}",
            f"Accept: {FHIR_JSON}",
            "User-Agent: greenlight-bench",
        ]
        if token is not None and self.authenticated:
            lines.append(f"Authorization: Bearer {token}")
        if body or self.method in ("POST", "PUT"):
            lines.append(f"Content-Type: {FHIR_JSON}")
            lines.append(f"Content-Length: {len(body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("ascii") + body


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="metadata",
            method="GET",
            path="/fhir/metadata",
            expected_status=200,
            authenticated=False,
            description="GET /fhir/metadata: the CapabilityStatement (no token, as in FHIR)",
        ),
        Scenario(
            name="patient-read",
            method="GET",
            path="/fhir/Patient/{patient_id}",
            expected_status=200,
            authenticated=True,
            description="GET /fhir/Patient/{id} of one seeded Patient",
        ),
        Scenario(
            name="patient-create",
            method="POST",
            path="/fhir/Patient",
            expected_status=201,
            authenticated=True,
            body=PATIENT_BYTES,
            description="POST /fhir/Patient with a ~1 KB US Core Patient (every request inserts)",
        ),
        Scenario(
            name="crd-order-sign",
            method="POST",
            path=crd.SERVICE_PATH,
            expected_status=200,
            authenticated=True,
            kind="crd",
            description="CDS Hooks order-sign, full prefetch, CPT 72148 for demo member "
            "10A3D58WH456, fresh ES384/RS384 JWT per call; same order every call (the stored "
            "coverage assertion is reused)",
        ),
        Scenario(
            name="crd-order-sign-new",
            method="POST",
            path=crd.SERVICE_PATH,
            expected_status=200,
            authenticated=True,
            kind="crd",
            distinct_orders=True,
            description="crd-order-sign with a new ServiceRequest id per call (a new coverage "
            "assertion is decided and written every call)",
        ),
        Scenario(
            name="dtr-package",
            method="POST",
            path=dtr.PACKAGE_PATH,
            expected_status=200,
            authenticated=True,
            kind="dtr",
            description="DTR $questionnaire-package: the Inferno DTR kit's payer-server request "
            "(E0424 for pat015) -> the home oxygen package",
        ),
        Scenario(
            name="dtr-next-question",
            method="POST",
            path=dtr.NEXT_QUESTION_PATH,
            expected_status=200,
            authenticated=True,
            kind="dtr",
            description="DTR $next-question, lumbar-mri adaptive form: a follow-up step (the "
            "step-1 questions answered; Greenlight adds the next ones)",
        ),
        Scenario(
            name="pas-submit",
            method="POST",
            path=pas.SUBMIT_PATH,
            expected_status=200,
            authenticated=True,
            kind="pas",
            description="PAS Claim/$submit, certified path: the Inferno PAS 2.0.1 approval "
            "payload edited for approval (lumbar MRI by a gold-carded NPI -> A1), a new "
            "Bundle and Claim identifier per request (every call is a new submission)",
        ),
    )
}

DEFAULT_SCENARIOS = ("metadata", "patient-read", "patient-create")
