"""Example instances read at test time from the IG packages in ../shared/fhir-packages.

Nothing is copied into the project: the .tgz files are opened where they are.
"""

from __future__ import annotations

import copy
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

PACKAGES_DIR = Path(__file__).resolve().parents[3] / "shared" / "fhir-packages"
DAVINCI_PACKAGES = (
    "davinci_pas_2.0.1.tgz",
    "davinci-crd-2.0.1.tgz",
    "davinci_dtr_2.0.1.tgz",
    "davinci_pas_2.2.1.tgz",
)
PACKAGE_IDS = {
    "davinci_pas_2.0.1.tgz": "hl7.fhir.us.davinci-pas#2.0.1",
    "davinci-crd-2.0.1.tgz": "hl7.fhir.us.davinci-crd#2.0.1",
    "davinci_dtr_2.0.1.tgz": "hl7.fhir.us.davinci-dtr#2.0.1",
    "davinci_pas_2.2.1.tgz": "hl7.fhir.us.davinci-pas#2.2.1",
}


@lru_cache(maxsize=16)
def _package_examples(package: str) -> tuple[tuple[str, bytes], ...]:
    found: list[tuple[str, bytes]] = []
    with tarfile.open(PACKAGES_DIR / package) as archive:
        for member in archive.getmembers():
            if (
                member.isfile()
                and member.name.startswith("package/example/")
                and member.name.endswith(".json")
            ):
                handle = archive.extractfile(member)
                if handle is not None:
                    found.append((member.name, handle.read()))
    return tuple(sorted(found))


@lru_cache(maxsize=64)
def _core_resource(name: str) -> bytes:
    with tarfile.open(PACKAGES_DIR / "hl7.fhir.r4.core.tgz") as archive:
        handle = archive.extractfile(f"package/{name}")
        assert handle is not None
        return handle.read()


def ig_example_from(resource_type: str) -> tuple[dict[str, Any], str]:
    """The first example of `resource_type` in the Da Vinci packages, and its IG (`id#version`)."""
    for package in DAVINCI_PACKAGES:
        for _name, raw in _package_examples(package):
            resource = orjson.loads(raw)
            if resource.get("resourceType") == resource_type:
                return copy.deepcopy(resource), PACKAGE_IDS[package]
    raise LookupError(f"no {resource_type} example in {DAVINCI_PACKAGES}")


def davinci_examples() -> list[dict[str, Any]]:
    """Every example resource of the Da Vinci packages, and every resource inside their Bundles
    (fresh copies)."""
    found: list[dict[str, Any]] = []
    for package in DAVINCI_PACKAGES:
        for _name, raw in _package_examples(package):
            resource = orjson.loads(raw)
            found.append(resource)
            for entry in resource.get("entry") or []:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    found.append(entry["resource"])
    return found


def ig_example(resource_type: str) -> dict[str, Any]:
    """The first example of `resource_type` in the Da Vinci packages (a fresh copy)."""
    return ig_example_from(resource_type)[0]


def example_ig(resource_type: str) -> str | None:
    """The IG (`id#version`) whose example `example_for` returns; None for core resources."""
    if resource_type in ("ValueSet", "AuditEvent"):
        return None
    return ig_example_from(resource_type)[1]


def core_resource(file_name: str) -> dict[str, Any]:
    """A conformance resource of the R4 core package, e.g. `ValueSet-administrative-gender.json`."""
    loaded: dict[str, Any] = orjson.loads(_core_resource(file_name))
    return loaded


# No package ships an AuditEvent example; this one follows the R4 AuditEvent definition for a
# REST read of a Claim by a payer system (type rest/read, agent requestor, entity = the Claim).
AUDIT_EVENT: dict[str, Any] = {
    "resourceType": "AuditEvent",
    "type": {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    },
    "subtype": [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
    ],
    "action": "R",
    "recorded": "2026-11-23T10:15:00Z",
    "outcome": "0",
    "agent": [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                        "code": "humanuser",
                    }
                ]
            },
            "who": {"display": "Utilization review nurse"},
            "requestor": True,
        }
    ],
    "source": {"site": "Greenlight", "observer": {"display": "Greenlight payer server"}},
    "entity": [
        {
            "what": {"reference": "Patient/example"},
            "type": {
                "code": "1",
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            },
        },
        {"what": {"reference": "Claim/example"}},
    ],
}


def example_for(resource_type: str) -> dict[str, Any]:
    """A real example of every type the REST API serves (IG example, core ValueSet, AuditEvent)."""
    if resource_type == "ValueSet":
        return core_resource("ValueSet-administrative-gender.json")
    if resource_type == "AuditEvent":
        return copy.deepcopy(AUDIT_EVENT)
    return ig_example(resource_type)
