"""The CRD 2.2.1 logical models of a CDS Hooks response (`CRDHooksResponseBase` and one per
response type, StructureDefinition-CRDHooksResponse-*.xml of the published IG), as checks that
return error strings (empty: the card or response fits). Written from the models' differentials;
the CDS Hooks rules they build on are `crd_checks.check_hook_response`'s (the Inferno kit's).

Only the models whose CRD requirement Greenlight claims are here: the base (resp-13), External
Reference (resp-22), Instructions (resp-24) and Additional Orders (resp-58). The Alternate
Request model is self-contradictory in 2.2.1 (action `type` fixed to `create`, while its
invariant crd-respar-1 asks for one `update` or a `delete` and a `create`), and Launch SMART
requires a suggestion on a card whose actions are forbidden; neither is checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.crd_checks import CRD_TEMP_SYSTEM, card_type_codes, is_uuid

Card = Mapping[str, Any]
#: CRDHooksResponse-additionalOrders: the resource types of its action.resource profiles
ADDITIONAL_ORDER_TYPES = frozenset(
    {
        "Appointment",
        "CommunicationRequest",
        "DeviceRequest",
        "MedicationRequest",
        "NutritionOrder",
        "ServiceRequest",
        "VisionPrescription",
    }
)


def base_errors(response: Mapping[str, Any]) -> list[str]:
    """CRDHooksResponseBase: every card has a `uuid` and a `source.topic` coded from the CRD card
    types (extensible: a coding is needed, CRD's code system when the type is one of its codes),
    every suggested action a `description`, every link a `type`."""
    errors = []
    codes = card_type_codes()
    for number, card in enumerate(response.get("cards") or []):
        at = f"cards[{number}]"
        if not is_uuid(card.get("uuid")):
            errors.append(f"{at}.uuid is missing or not a UUID")
        topic = (card.get("source") or {}).get("topic")
        if not isinstance(topic, dict) or not topic.get("code"):
            errors.append(f"{at}.source.topic is missing or has no code")
        elif topic["code"] in codes and topic.get("system") != CRD_TEMP_SYSTEM:
            errors.append(f"{at}.source.topic `{topic['code']}` is not in the CRD code system")
        for index, suggestion in enumerate(card.get("suggestions") or []):
            for position, action in enumerate(suggestion.get("actions") or []):
                if not action.get("description"):
                    errors.append(f"{at}.suggestions[{index}].actions[{position}].description")
        for index, link in enumerate(card.get("links") or []):
            if not link.get("type"):
                errors.append(f"{at}.links[{index}].type is missing")
    return errors


def external_reference_errors(card: Card) -> list[str]:
    """CRDHooksResponse-externalReference: no suggestions, one or more links, all `absolute`,
    none with an appContext."""
    errors = []
    if card.get("suggestions"):
        errors.append("an External Reference card has no suggestions")
    links = card.get("links") or []
    if not links:
        errors.append("an External Reference card has at least one link")
    for index, link in enumerate(links):
        if link.get("type") != "absolute":
            errors.append(f"links[{index}].type must be `absolute`")
        if "appContext" in link:
            errors.append(f"links[{index}] has an appContext")
    return errors


def instructions_errors(card: Card) -> list[str]:
    """CRDHooksResponse-instructions: a `detail`, no suggestions, no links."""
    errors = []
    if not card.get("detail"):
        errors.append("an Instructions card has a detail")
    if card.get("suggestions"):
        errors.append("an Instructions card has no suggestions")
    if card.get("links"):
        errors.append("an Instructions card has no links")
    return errors


def additional_orders_errors(card: Card) -> list[str]:
    """CRDHooksResponse-additionalOrders: one or more suggestions, each with one or more
    `create` actions holding a resource (of an order type), no `resourceId`; no links."""
    errors = []
    suggestions = card.get("suggestions") or []
    if not suggestions:
        errors.append("an Additional Orders card has at least one suggestion")
    for index, suggestion in enumerate(suggestions):
        actions = suggestion.get("actions") or []
        if not actions:
            errors.append(f"suggestions[{index}] has at least one action")
        for position, action in enumerate(actions):
            at = f"suggestions[{index}].actions[{position}]"
            if action.get("type") != "create":
                errors.append(f"{at}.type must be `create`")
            resource = action.get("resource")
            if not isinstance(resource, dict):
                errors.append(f"{at} has a resource")
            elif resource.get("resourceType") not in ADDITIONAL_ORDER_TYPES:
                errors.append(f"{at}.resource is a {resource.get('resourceType')}")
            if "resourceId" in action:
                errors.append(f"{at} has no resourceId")
    if card.get("links"):
        errors.append("an Additional Orders card has no links")
    return errors
