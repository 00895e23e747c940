"""A mock EHR FHIR server for CRD tests, answering through pytest-httpx from the Inferno CRD kit's
own EHR data (`resources/crd_transaction_bundle.json`, read from ../shared at test time).

Reads (`Type/id`) and the searches CRD services make (`Coverage?patient=`) are answered; anything
else is a 404. Requests carry the hook's `fhirAuthorization` token, which tests can inspect.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson

from tests.conftest import INFERNO_FIXTURES

INFERNO_EHR_HOST = "inferno.healthit.gov"
BUNDLE = INFERNO_FIXTURES / "davinci-crd-test-kit" / "resources" / "crd_transaction_bundle.json"


@lru_cache(maxsize=1)
def ehr_resources() -> dict[str, dict[str, Any]]:
    """The mock EHR's resources by `Type/id`."""
    bundle = orjson.loads(BUNDLE.read_bytes())
    return {
        f"{entry['resource']['resourceType']}/{entry['resource']['id']}": entry["resource"]
        for entry in bundle["entry"]
    }


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def answer(request: httpx.Request) -> httpx.Response:
    """The mock EHR's answer to one request."""
    path = request.url.path.split("/r4/", 1)[-1].strip("/")
    resources = ehr_resources()
    if path in resources:
        return httpx.Response(200, json=resources[path])
    if path == "Coverage":
        params = dict(parse_qsl(request.url.query.decode()))
        patient = params.get("patient", "").split("/")[-1]
        found = [
            r
            for key, r in resources.items()
            if key.startswith("Coverage/")
            and r.get("beneficiary", {}).get("reference") == f"Patient/{patient}"
            and r.get("status") == params.get("status", r.get("status"))
        ]
        return httpx.Response(200, json=_searchset(found))
    return httpx.Response(
        404,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-found", "diagnostics": path}],
        },
    )
