"""What a CDS service is: its hook, discovery entry, prefetch templates and the orders it
advises on. Discovery (`GET /cds-services`) is generated from these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_hooks.request import HookRequest

CONFIGURATION_OPTIONS_EXTENSION = "davinci-crd.configuration-options"
VERSION_EXTENSION = "davinci-crd.version"
SUPPORTED_CRD_VERSIONS = ("2.0", "2.2")

# Options every service offers (CRD dev-4/5/7): one boolean per card type it can return, plus
# a limit on cards. Codes are the CRD card-type codes; unknown options in a request are ignored.
CONFIGURATION_OPTIONS: tuple[dict[str, Any], ...] = (
    {
        "code": "coverage-info",
        "type": "boolean",
        "name": "Coverage information",
        "description": "Coverage, prior authorization and documentation requirements for the "
        "orders (the coverage-information system action and its cards)",
        "default": True,
    },
    {
        "code": "network",
        "type": "boolean",
        "name": "Site of care",
        "description": "Proposals to perform the service at an in-network site of lower cost",
        "default": True,
    },
    {
        "code": "clinical-reminder",
        "type": "boolean",
        "name": "Companion orders",
        "description": "Orders that should accompany the one being placed (e.g. a screening "
        "test required before a drug is started)",
        "default": True,
    },
    {
        "code": "insurance",
        "type": "boolean",
        "name": "Coverage record updates",
        "description": "Corrections and additions to the patient's coverage record (member and "
        "subscriber id, plan, group, status, coverage period) from the payer's enrollment data",
        "default": True,
    },
    {
        "code": "max-cards",
        "type": "integer",
        "name": "Maximum cards",
        "description": "The largest number of cards to return",
        "default": 10,
    },
)


@dataclass(frozen=True)
class HookService:
    """One CDS service (one per hook, CRD found-15: one endpoint for all coverages)."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    primary: bool  # primary hooks always answer with coverage information (CRD hook-16)
    needs_order_from_ehr: bool = False  # order-dispatch names the order instead of sending it

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
            "extension": {
                CONFIGURATION_OPTIONS_EXTENSION: [dict(o) for o in CONFIGURATION_OPTIONS],
                VERSION_EXTENSION: list(SUPPORTED_CRD_VERSIONS),
            },
        }


def configuration(request: HookRequest) -> dict[str, Any]:
    """The effective options: defaults overridden by valid values sent (CRD dev-14/15/17)."""
    effective: dict[str, Any] = {o["code"]: o["default"] for o in CONFIGURATION_OPTIONS}
    for option in CONFIGURATION_OPTIONS:
        value = request.configuration.get(option["code"])
        if option["type"] == "boolean" and isinstance(value, bool):
            effective[option["code"]] = value
        elif option["type"] == "integer" and isinstance(value, int) and not isinstance(value, bool):
            effective[option["code"]] = max(0, value)
    return effective


COMMON_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
}
