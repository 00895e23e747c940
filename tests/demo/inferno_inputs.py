"""What the Inferno CRD, DTR and PAS fixtures send to a payer server, read at test time.

The fixtures stay in ../shared/fixtures/inferno (nothing is copied into the project). These
helpers walk the request payloads Inferno's server suites post (CRD hook bodies, DTR
$questionnaire-package inputs, PAS $submit / $inquire bundles) and return every resource nested
in them, contained resources included.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import FHIR_PACKAGES, INFERNO_FIXTURES

# Request payloads (what Inferno sends to the server under test), per test kit.
REQUEST_FILES: dict[str, tuple[str, ...]] = {
    "davinci-crd-test-kit": ("extracted/*.json", "resources/crd_transaction_bundle.json"),
    "davinci-dtr-test-kit": (
        "extracted/*questionnaire_package_request.json",
        "extracted/initial_static_questionnaire_request.json",
        "spec/fixtures/questionnaire_package_input_params_conformant.json",
        "config/pat015_bundle.json",
    ),
    "davinci-pas-test-kit": (
        "extracted/v201/*_payload.json",
        "extracted/v221/*_payload.json",
        "extracted/pas_ri/*_payload.json",
        "spec/fixtures/conformant_pas_*.json",
    ),
}


@dataclass(frozen=True)
class FixtureResource:
    path: str  # relative to the Inferno fixtures directory
    resource: dict[str, Any]

    @property
    def type(self) -> str:
        value: str = self.resource["resourceType"]
        return value


def request_files() -> list[Path]:
    files: set[Path] = set()
    for kit, patterns in REQUEST_FILES.items():
        for pattern in patterns:
            found = sorted((INFERNO_FIXTURES / kit).glob(pattern))
            assert found, f"no fixture matches {kit}/{pattern}"
            files.update(found)
    return sorted(files)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("resourceType"), str):
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


@lru_cache(maxsize=1)
def _load_requests() -> tuple[tuple[str, Any], ...]:
    return tuple(
        (str(path.relative_to(INFERNO_FIXTURES)), orjson.loads(path.read_bytes()))
        for path in request_files()
    )


def request_resources(*types: str, under: str = "") -> list[FixtureResource]:
    """Every resource of `types` nested in the request payloads (optionally under a sub-path)."""
    return [
        FixtureResource(path, resource)
        for path, document in _load_requests()
        if path.startswith(under)
        for resource in _walk(document)
        if resource["resourceType"] in types
    ]


def hook_contexts() -> list[tuple[str, dict[str, Any]]]:
    """(file, context) of every CDS Hooks request body in the CRD kit."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path, document in _load_requests():
        bodies = document if isinstance(document, list) else [document]
        for body in bodies:
            if isinstance(body, dict) and "hook" in body and "context" in body:
                found.append((path, body["context"]))
    return found


@lru_cache(maxsize=1)
def all_fixture_text() -> str:
    """The raw text of every Inferno fixture and every Da Vinci IG example (to look values up)."""
    parts = [
        path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(INFERNO_FIXTURES.rglob("*.json"))
    ]
    for package in sorted(FHIR_PACKAGES.glob("davinci*.tgz")):
        with tarfile.open(package) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.startswith("package/example/"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        parts.append(handle.read().decode("utf-8", errors="replace"))
    return "\n".join(parts)
