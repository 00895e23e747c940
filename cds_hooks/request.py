"""A CDS Hooks request, checked: malformed bodies answer 400 with an OperationOutcome naming the
field (CRD hook-13); unknown context elements and extensions are ignored (hook-23, found-33).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.fhir.models import parse_json_body
from app.fhir.outcomes import FhirError, Issue

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CONFIGURATION_EXTENSION = "davinci-crd.configuration"
REQUESTED_VERSION_EXTENSION = "davinci-crd.requestedVersion"
DEFAULT_CRD_VERSION = "2.0"  # CRD 2.0.1: what CMS names and Inferno validates against


@dataclass(frozen=True)
class FhirAuthorization:
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True)
class HookRequest:
    """The parts of a CDS Hooks request that Greenlight uses."""

    hook: str
    hook_instance: str
    context: dict[str, Any]
    prefetch: dict[str, Any] = field(default_factory=dict)
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None
    configuration: dict[str, Any] = field(default_factory=dict)
    crd_version: str = DEFAULT_CRD_VERSION

    @property
    def wants_crd_22(self) -> bool:
        """Whether the caller asked for CRD 2.2 or later (CRD dev-3 `requestedVersion`)."""
        major, _, minor = self.crd_version.partition(".")
        return (major, minor.split(".")[0]) >= ("2", "2") if major.isdigit() else False

    @property
    def patient_id(self) -> str | None:
        value = self.context.get("patientId")
        return value if isinstance(value, str) else None


def _bad(message: str, path: str) -> FhirError:
    return FhirError(400, [Issue("error", "invalid", message, (path,))])


def _string(body: dict[str, Any], key: str, path: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"{path} is required", path)
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{path} must be a non-empty string", path)
    return value


def parse_hook_request(raw: bytes, expected_hook: str) -> HookRequest:
    """Parse and check a hook call for the service of `expected_hook`."""
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise _bad("A CDS Hooks request must be a JSON object", "$")
    hook = _string(body, "hook", "hook", required=True)
    if hook != expected_hook:
        raise _bad(f"This service answers the {expected_hook} hook, not {hook}", "hook")
    instance = _string(body, "hookInstance", "hookInstance", required=True)
    assert instance is not None
    if not _UUID.match(instance):
        raise _bad("hookInstance must be a UUID", "hookInstance")
    context = body.get("context")
    if not isinstance(context, dict):
        raise _bad("context is required and must be an object", "context")
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, dict):
        raise _bad("prefetch must be an object", "prefetch")
    fhir_server = _string(body, "fhirServer", "fhirServer", required=False)
    authorization = None
    raw_auth = body.get("fhirAuthorization")
    if raw_auth is not None:
        if not isinstance(raw_auth, dict):
            raise _bad("fhirAuthorization must be an object", "fhirAuthorization")
        if fhir_server is None:
            raise _bad("fhirAuthorization is given without fhirServer", "fhirServer")
        token = _string(raw_auth, "access_token", "fhirAuthorization.access_token", required=True)
        assert token is not None
        authorization = FhirAuthorization(token, str(raw_auth.get("token_type") or "Bearer"))
    configuration: dict[str, Any] = {}
    crd_version = DEFAULT_CRD_VERSION
    extension = body.get("extension")
    if isinstance(extension, dict):
        if isinstance(extension.get(CONFIGURATION_EXTENSION), dict):
            configuration = extension[CONFIGURATION_EXTENSION]
        requested = extension.get(REQUESTED_VERSION_EXTENSION)
        if isinstance(requested, str) and requested.strip():
            crd_version = requested.strip()
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id or "/" in patient_id:
        raise _bad("context.patientId must be a plain patient id", "context.patientId")
    return HookRequest(
        hook=hook,
        hook_instance=instance,
        context=context,
        prefetch=prefetch,
        fhir_server=fhir_server.rstrip("/") if fhir_server else None,
        fhir_authorization=authorization,
        configuration=configuration,
        crd_version=crd_version,
    )


def context_bundle_resources(request: HookRequest, key: str) -> list[dict[str, Any]]:
    """Resources of a context Bundle (`draftOrders`, `appointments`); 400 when malformed."""
    bundle = request.context.get(key)
    path = f"context.{key}"
    if bundle is None:
        return []
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise _bad(f"{path} must be a FHIR Bundle", path)
    resources: list[dict[str, Any]] = []
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        where = f"{path}.entry[{index}].resource"
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise _bad(f"{where} must be a FHIR resource", where)
        if not isinstance(resource.get("id"), str):
            raise _bad(f"{where}.id is required to refer to the order", f"{where}.id")
        resources.append(resource)
    return resources
