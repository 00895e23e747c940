"""The CapabilityStatement, generated from the registry: only what is implemented is listed."""

from __future__ import annotations

from typing import Any

from app import __version__
from app.config import Settings
from app.fhir.models import FHIR_VERSION
from app.registry import COMMON_PARAMS, Registry, ResourceSpec

_SMART_SECURITY_SERVICE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }
    ],
    "text": "OAuth2 using SMART Backend Services (client_credentials + private_key_jwt)",
}


def _resource_entry(spec: ResourceSpec, registry: Registry) -> dict[str, Any]:
    params = [*COMMON_PARAMS, *spec.search_params]
    entry: dict[str, Any] = {
        "type": spec.type,
        "interaction": [{"code": code} for code in spec.interactions],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": False,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {
                "name": p.name,
                "type": p.type,
                "documentation": p.documentation,
                **({"definition": p.definition} if p.definition else {}),
            }
            for p in params
        ],
    }
    if spec.profiles:
        entry["supportedProfile"] = list(spec.profiles)
    operations = [op for op in registry.operations if spec.type in op.resource_types]
    if operations:
        entry["operation"] = [{"name": op.name, "definition": op.definition} for op in operations]
    return entry


def capability_statement(
    settings: Settings, registry: Registry, software_date: str
) -> dict[str, Any]:
    """A CapabilityStatement (kind `instance`) describing this server as configured."""
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [_resource_entry(spec, registry) for spec in registry.resources.values()],
    }
    if settings.auth_enabled:
        rest["security"] = {
            "service": [_SMART_SECURITY_SERVICE],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "token", "valueUri": f"{settings.base_url}/auth/token"},
                    ],
                }
            ],
        }
    system_ops = [op for op in registry.operations if not op.resource_types]
    if system_ops:
        rest["operation"] = [{"name": op.name, "definition": op.definition} for op in system_ops]
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "id": "greenlight",
        "status": "active",
        "date": software_date,
        "publisher": "Greenlight",
        "kind": "instance",
        "software": {"name": "Greenlight", "version": __version__},
        "implementation": {
            "description": "Greenlight payer prior authorization server",
            "url": settings.fhir_base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
    for contribute in registry.capability_contributors:
        contribute(statement)
    return statement
