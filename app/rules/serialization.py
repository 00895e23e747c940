"""Decisions as JSON and back, for storage beside their coverage assertion."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.rules.engine import Decision, SiteProposal
from app.rules.topic import Companion, Reason


def decision_to_json(decision: Decision) -> dict[str, Any]:
    return {
        "topic_id": decision.topic_id,
        "topic_title": decision.topic_title,
        "covered": decision.covered,
        "pa_needed": decision.pa_needed,
        "doc_needed": decision.doc_needed,
        "doc_purpose": list(decision.doc_purpose),
        "info_needed": list(decision.info_needed),
        "reasons": [r.model_dump(exclude_none=True) for r in decision.reasons],
        "questionnaires": list(decision.questionnaires),
        "billing_codes": list(decision.billing_codes),
        "policy_title": decision.policy_title,
        "policy_url": decision.policy_url,
        "instructions": decision.instructions,
        "site_proposals": [
            {"location": p.location, "summary": p.summary, "detail": p.detail}
            for p in decision.site_proposals
        ],
        "applied": list(decision.applied),
        "expiry_date": decision.expiry_date.isoformat() if decision.expiry_date else None,
        "auto_approval_criteria": list(decision.auto_approval_criteria),
        "companions": [c.model_dump() for c in decision.companions],
    }


def decision_from_json(data: dict[str, Any]) -> Decision:
    expiry = data.get("expiry_date")
    return Decision(
        topic_id=data.get("topic_id"),
        topic_title=data.get("topic_title"),
        covered=data["covered"],
        pa_needed=data.get("pa_needed"),
        doc_needed=data.get("doc_needed"),
        doc_purpose=tuple(data.get("doc_purpose") or ()),
        info_needed=tuple(data.get("info_needed") or ()),
        reasons=tuple(Reason.model_validate(r) for r in data.get("reasons") or ()),
        questionnaires=tuple(data.get("questionnaires") or ()),
        billing_codes=tuple(data.get("billing_codes") or ()),
        policy_title=data.get("policy_title"),
        policy_url=data.get("policy_url"),
        instructions=data.get("instructions"),
        site_proposals=tuple(SiteProposal(**p) for p in data.get("site_proposals") or ()),
        applied=tuple(data.get("applied") or ()),
        expiry_date=date.fromisoformat(expiry) if expiry else None,
        auto_approval_criteria=tuple(data.get("auto_approval_criteria") or ()),
        companions=tuple(Companion.model_validate(c) for c in data.get("companions") or ()),
    )
