"""CRD cards: coverage instructions, payer policy links (External Reference), site-of-care
proposals (Propose Alternate Request), companion orders (Additional Orders) and coverage record
corrections (Create or update coverage information). Every card and suggestion has a `uuid`;
`summary` stays under 140 characters; `source.label` is the payer's name; `source.topic` is a
CRD card type. Every card about particular orders names them in `detail` by what they order and
their id (CRD dev-24: a call may carry several orders).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from app.fhir.json_copy import json_copy
from app.rules.engine import INDETERMINATE, Decision, SiteProposal
from app.rules.topic import Companion
from app.store.ids import random_uuid
from cds_hooks.coverage_record import CoverageRecord

CARD_TYPES = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
_TOPIC_DISPLAY = {
    "coverage-info": "Coverage Information",
    "network": "Network",
    "clinical-reminder": "Clinical Reminder",
    "insurance": "Insurance",
}
MAX_SUMMARY = 139

_PA_TEXT = {
    "auth-needed": "prior authorization required",
    "no-auth": "no prior authorization needed",
    "performpa": "the performer must obtain prior authorization",
    "conditional": "prior authorization may be required",
    "satisfied": "prior authorization already on file",
    "indeterminate": "whether prior authorization is needed could not be determined",
}
_DOC_TEXT = {
    "clinical": "clinical documentation needed",
    "admin": "administrative documentation needed",
    "both": "clinical and administrative documentation needed",
    "conditional": "documentation may be needed",
    "indeterminate": "whether documentation is needed could not be determined",
}
_COVERED_TEXT = {
    "covered": "covered",
    "not-covered": "not covered",
    "conditional": "coverage depends on details not known yet",
    "indeterminate": "coverage could not be determined",
}


def _source(payer_name: str, topic: str) -> dict[str, Any]:
    return {
        "label": payer_name,
        "topic": {"system": CARD_TYPES, "code": topic, "display": _TOPIC_DISPLAY[topic]},
    }


def _fit(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1].rstrip() + "…"


def order_label(order: dict[str, Any], decision: Decision) -> str:
    """A short name for the order: the topic title, else the order's code display or text."""
    if decision.topic_title:
        return decision.topic_title
    for key in ("code", "codeCodeableConcept", "medicationCodeableConcept", "serviceType", "type"):
        concept = order.get(key)
        if isinstance(concept, list):
            concept = concept[0] if concept else None
        if isinstance(concept, dict):
            if concept.get("text"):
                return str(concept["text"])
            for coding in concept.get("coding") or []:
                if coding.get("display"):
                    return str(coding["display"])
    return f"{order.get('resourceType', 'Order')} {order.get('id', '')}".strip()


def order_name(order: dict[str, Any], decision: Decision) -> str:
    """The order as a user recognises it in a card's detail: its label and its id (dev-24)."""
    return f"**{order_label(order, decision)}** ({order.get('resourceType')}/{order.get('id')})"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def coverage_card(order: dict[str, Any], decision: Decision, payer_name: str) -> dict[str, Any]:
    """An Instructions card stating coverage, prior authorization and documentation."""
    label = order_label(order, decision)
    unknown = INDETERMINATE in (decision.covered, decision.pa_needed, decision.doc_needed)
    facts = [_COVERED_TEXT.get(decision.covered, decision.covered)]
    if decision.pa_needed:
        facts.append(_PA_TEXT.get(decision.pa_needed, decision.pa_needed))
    if decision.doc_needed:
        facts.append(_DOC_TEXT.get(decision.doc_needed, decision.doc_needed))
    detail_lines = [f"{order_name(order, decision)}: {', '.join(facts)}."]
    detail_lines.extend(r.text for r in decision.reasons if r.text)
    if decision.instructions and (decision.pa_needed != "no-auth" or decision.doc_needed):
        detail_lines.append(decision.instructions)
    if decision.questionnaires:
        detail_lines.append(
            "Complete the payer's documentation form in DTR: it is prefilled from the chart."
        )
    return {
        "uuid": random_uuid(),
        "summary": _fit(f"{label}: {', '.join(facts)}"),
        "detail": "\n\n".join(detail_lines),
        "indicator": "warning" if decision.covered == "not-covered" or unknown else "info",
        "source": _source(payer_name, "coverage-info"),
    }


def policy_detail(policy_title: str, order_names: list[str]) -> str:
    """The detail of a policy card: the policy and the orders it governs (dev-24)."""
    return f"The coverage rules for {_names(order_names)} are in {policy_title}."


def policy_card(
    decision: Decision, payer_name: str, order_names: list[str]
) -> dict[str, Any] | None:
    """An External Reference card linking the payer's policy for the topic (absolute link)."""
    if not decision.policy_url or not decision.policy_title:
        return None
    return {
        "uuid": random_uuid(),
        "summary": _fit(f"{decision.topic_title or 'Coverage'}: payer policy"),
        "detail": policy_detail(decision.policy_title, order_names),
        "indicator": "info",
        "source": _source(payer_name, "coverage-info"),
        "links": [
            {"label": _fit(decision.policy_title), "url": decision.policy_url, "type": "absolute"}
        ],
    }


@dataclass(frozen=True)
class Site:
    """A proposed site of care as the EHR can order it: by name and NPI (no payer-side ids)."""

    name: str
    npi: str | None = None

    def reference(self) -> dict[str, Any]:
        reference: dict[str, Any] = {"display": self.name}
        if self.npi:
            reference["identifier"] = {
                "system": "http://hl7.org/fhir/sid/us-npi",
                "value": self.npi,
            }
        return reference


def site_of_care_card(
    order: dict[str, Any],
    proposal: SiteProposal,
    site: Site | None,
    payer_name: str,
    decision: Decision,
) -> dict[str, Any]:
    """A Propose Alternate Request card: the same order, performed at the proposed site."""
    alternative = json_copy(order)
    site_reference = (site or Site(proposal.location)).reference()
    alternative["locationReference"] = [site_reference]
    alternative.pop("locationCode", None)
    return {
        "uuid": random_uuid(),
        "summary": _fit(proposal.summary),
        "detail": f"For {order_name(order, decision)}: {proposal.detail}",
        "indicator": "info",
        "source": _source(payer_name, "network"),
        "selectionBehavior": "at-most-one",
        "suggestions": [
            {
                "label": _fit(f"Perform at {site_reference['display']}"),
                "uuid": random_uuid(),
                "actions": [
                    {
                        "type": "update",
                        "description": f"Perform the order at {site_reference['display']}",
                        "resource": alternative,
                    }
                ],
            }
        ],
    }


def dtr_launch_card(
    order: dict[str, Any],
    decision: Decision,
    *,
    app_url: str,
    assertion_id: str,
    coverage_reference: str,
    payer_name: str,
) -> dict[str, Any]:
    """A SMART App Launch card opening the DTR app on this order's documentation (CRD -> DTR:
    the app asks `$questionnaire-package` with the coverage-assertion-id as `context`)."""
    context = {
        "coverageAssertionId": assertion_id,
        "questionnaire": list(decision.questionnaires),
        "order": f"{order['resourceType']}/{order['id']}",
        "coverage": coverage_reference,
    }
    label = order_label(order, decision)
    return {
        "uuid": random_uuid(),
        "summary": _fit(f"{label}: complete the documentation in DTR"),
        "detail": f"For {order_name(order, decision)}, the payer's documentation form is "
        "prefilled from the chart; review and sign it.",
        "indicator": "info",
        "source": _source(payer_name, "coverage-info"),
        "links": [
            {
                "label": "Open the documentation form (DTR)",
                "url": app_url,
                "type": "smart",
                "appContext": orjson.dumps(context).decode(),
            }
        ],
    }


def companion_order_card(
    order: dict[str, Any],
    companion: Companion,
    *,
    decision: Decision,
    requester: dict[str, Any] | None,
    authored_on: str,
    payer_name: str,
) -> dict[str, Any]:
    """An Additional Orders card: a draft ServiceRequest for the companion to create (CRD
    companions/prerequisites), for the same patient and requester as the triggering order."""
    proposed: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"{companion.name}-{uuid.uuid4().hex[:8]}",
        "status": "draft",
        "intent": "original-order",
        "code": {
            "coding": [
                {"system": companion.system, "code": companion.code, "display": companion.display}
            ],
            "text": companion.display,
        },
        "subject": order.get("subject"),
        "authoredOn": authored_on,
        "requester": requester,
        "reasonReference": [{"reference": f"{order['resourceType']}/{order['id']}"}],
    }
    return {
        "uuid": random_uuid(),
        "summary": _fit(companion.summary),
        "detail": f"For {order_name(order, decision)}: {companion.detail}",
        "indicator": "info",
        "source": _source(payer_name, "clinical-reminder"),
        "selectionBehavior": "any",
        "suggestions": [
            {
                "label": _fit(f"Order: {companion.display}"),
                "uuid": random_uuid(),
                "actions": [
                    {
                        "type": "create",
                        "description": f"Add the order: {companion.display}",
                        "resource": {k: v for k, v in proposed.items() if v is not None},
                    }
                ],
            }
        ],
    }


def technical_card(payer_name: str, why: str) -> dict[str, Any]:
    """Coverage requirements could not be checked for a technical reason (CRD resp-43)."""
    return {
        "uuid": random_uuid(),
        "summary": _fit(f"{payer_name}: coverage requirements could not be checked"),
        "detail": f"{why[0].upper()}{why[1:]}. They are checked again at the next step of the "
        f"order; if this persists, contact {payer_name}.",
        "indicator": "warning",
        "source": _source(payer_name, "coverage-info"),
    }


def no_member_card(payer_name: str, why: str) -> dict[str, Any]:
    return {
        "uuid": random_uuid(),
        "summary": _fit(f"{payer_name}: {why}"),
        "detail": f"{why}. Check the member id on the coverage, or the patient's other coverage.",
        "indicator": "warning",
        "source": _source(payer_name, "coverage-info"),
    }


def coverage_record_action(record: CoverageRecord, payer_name: str) -> dict[str, Any]:
    """The `create` or `update` of the Coverage (a card's one action, or a system action)."""
    verb = "Add" if record.action == "create" else "Update"
    return {
        "type": record.action,
        "description": f"{verb} the {payer_name} coverage record",
        "resource": record.resource,
    }


def coverage_record_card(record: CoverageRecord, payer_name: str) -> dict[str, Any]:
    """A Create or update coverage information card (CRD 2.0.1; card type `insurance`): one
    suggestion holding one `create` or `update` of a Coverage, the differences in `detail`."""
    labels = ", ".join(dict.fromkeys(d.label for d in record.differences))
    if record.action == "create":
        plan = f" ({record.plan_name})" if record.plan_name else ""
        summary = f"Patient has {payer_name} coverage{plan} not on record: add it"
        label = f"Add the {payer_name} coverage to the patient's record"
        lead = (
            f"{payer_name} found this patient among its members by name and birth date, "
            "but the patient's record has no coverage. Adding it lets coverage requirements "
            "be answered for the patient's orders:"
        )
    else:
        summary = f"{payer_name} coverage record needs updating: {labels}"
        label = "Update the coverage record with the payer's details"
        lead = f"The patient's coverage record differs from {payer_name}'s enrollment data:"
    lines = [
        f"- {d.label.capitalize()}: {d.ehr or 'not recorded'} → {d.payer or 'none'}"
        for d in record.differences
    ]
    cancelled = any(d.label == "status" and d.payer != "active" for d in record.differences)
    return {
        "uuid": random_uuid(),
        "summary": _fit(summary),
        "detail": "\n\n".join([lead, "\n".join(lines), "Review the change before accepting it."]),
        "indicator": "warning" if cancelled else "info",
        "source": _source(payer_name, "insurance"),
        "selectionBehavior": "at-most-one",
        "suggestions": [
            {
                "label": _fit(label),
                "uuid": random_uuid(),
                "actions": [coverage_record_action(record, payer_name)],
            }
        ],
    }
