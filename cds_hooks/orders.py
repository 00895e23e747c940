"""The orders a hook asks advice on, and who orders them where: from the hook context, prefetch
or the EHR (checked as R4 resources: a malformed one answers 400 naming the element, CRD hook-13).
"""

from __future__ import annotations

from typing import Any

from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError, Issue
from app.rules.orders import ORDER_TYPES
from cds_hooks.ehr import EhrData, EhrRead
from cds_hooks.request import HookRequest, context_bundle_resources
from cds_hooks.service import HookService

REQUEST_ORDER_TYPES = frozenset(t for t in ORDER_TYPES if t not in ("Appointment", "Encounter"))


def _checked(resources: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Each resource must be valid R4 (400 naming the element otherwise, CRD hook-13)."""
    for index, resource in enumerate(resources):
        check_resource(resource, path_prefix=f"{path}[{index}]")
    return resources


async def orders_in_scope(
    service: HookService, request: HookRequest, ehr: EhrData
) -> list[dict[str, Any]]:
    """The orders (or appointments, encounters) the hook asks advice on."""
    hook = service.hook
    if hook in ("order-sign", "order-select"):
        drafts = [
            r
            for r in context_bundle_resources(request, "draftOrders")
            if r["resourceType"] in REQUEST_ORDER_TYPES
        ]
        _checked(drafts, "context.draftOrders.entry.resource")
        if hook == "order-select":
            selections = request.context.get("selections")
            if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
                raise FhirError(
                    400,
                    [
                        Issue(
                            "error",
                            "invalid",
                            "selections must be a list of references",
                            ("context.selections",),
                        )
                    ],
                )
            chosen = set(selections)
            drafts = [r for r in drafts if f"{r['resourceType']}/{r['id']}" in chosen]
        return drafts
    if hook == "appointment-book":
        appointments = [
            r
            for r in context_bundle_resources(request, "appointments")
            if r["resourceType"] == "Appointment"
        ]
        return _checked(appointments, "context.appointments.entry.resource")
    if hook == "order-dispatch":
        reference = request.context.get("order")
        if not isinstance(reference, str) or "/" not in reference:
            raise FhirError(
                400,
                [
                    Issue(
                        "error",
                        "invalid",
                        "context.order must be a Type/id reference",
                        ("context.order",),
                    )
                ],
            )
        found = [
            r
            for r in await ehr.get("order", reference)
            if f"{r.get('resourceType')}/{r.get('id')}" == reference
        ]
        return _checked(found, "prefetch.order")
    encounter_id = request.context.get("encounterId")
    if not isinstance(encounter_id, str) or not encounter_id:
        raise FhirError(
            400,
            [
                Issue(
                    "error", "invalid", "context.encounterId is required", ("context.encounterId",)
                )
            ],
        )
    encounters = await ehr.get_optional("encounter", f"Encounter/{encounter_id}")
    return _checked(
        [e for e in encounters if e.get("resourceType") == "Encounter"], "prefetch.encounter"
    )


def _reference_id(reference: Any, resource_type: str) -> str | None:
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if isinstance(reference, str) and reference.startswith(f"{resource_type}/"):
        return reference.split("/", 1)[1].split("/", 1)[0]
    return None


async def ordering_practitioner(
    request: HookRequest, ehr: EhrData, order: dict[str, Any]
) -> EhrRead:
    """The ordering practitioner: the order's requester, else the user signing (context.userId)."""
    wanted = _reference_id(order.get("requester"), "Practitioner") or _reference_id(
        request.context.get("userId"), "Practitioner"
    )
    if wanted is None:
        return EhrRead()
    for resource in await ehr.get_optional("user", f"Practitioner/{wanted}"):
        if resource.get("resourceType") == "Practitioner" and resource.get("id") == wanted:
            return EhrRead(resource)
    return EhrRead(failure=ehr.failure("user"))


async def order_location(ehr: EhrData, order: dict[str, Any]) -> EhrRead:
    """Where the order is to be done: its Location, or its place-of-service code as a Location."""
    failure = None
    for reference in order.get("locationReference") or []:
        location_id = _reference_id(reference, "Location")
        if location_id:
            key = f"location-{location_id}"
            found = await ehr.get_optional(key, f"Location/{location_id}")
            if found:
                return EhrRead(found[0])
            failure = failure or ehr.failure(key)
    codes = order.get("locationCode")
    if codes:
        return EhrRead({"resourceType": "Location", "type": codes})
    return EhrRead(failure=failure)
