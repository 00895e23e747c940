"""PAS load: `Claim/$submit` request Bundles on the certified path, each one a new submission.

The body is built at run time from the Inferno PAS kit's 2.0.1 approval payload (never copied
here), edited as `app/pas/OUTCOMES.md` says for approval by `app.pas.variants` (`VARIANT`): the
Claim's item becomes CPT 72148 (lumbar MRI, prior auth needed) ordered by the gold-carded NPI
1304582715, so Greenlight certifies it at once (X12 306 `A1`).

PAS answers a resubmission (same `Bundle.identifier` from the same client, identical content)
with the stored answer and writes nothing, so sending one body over and over would measure that
lookup, not a submission. Every request therefore carries a fresh `Bundle.identifier` value and
a fresh `Claim.identifier` value (the patient event trace number): the request body is a
template with two slots, filled from a pool of pre-generated values written before each run
(`write_pool`), one line per request, each line used once by the load generator.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.pas.variants import variant
from bench.crd import SHARED
from bench.loadgen import pooled_head

KIT = SHARED / "fixtures" / "inferno" / "davinci-pas-test-kit"
FIXTURE = KIT / "extracted" / "v201" / "approval_pa_submit_request_payload.json"
# The approval edit of `app/pas/OUTCOMES.md`: lumbar MRI by a gold-carded requester -> A1.
VARIANT = "approve-gold-card"
SUBMIT_PATH = "/fhir/Claim/$submit"
FHIR_JSON = "application/fhir+json"
X12_306 = "https://codesystem.x12.org/005010/306"
CERTIFIED = "A1"

# Placeholders in the body template, replaced per request by the values of a pool line.
BUNDLE_ID = "@@BUNDLE_ID@@"
CLAIM_ID = "@@CLAIM_ID@@"
SLOTS = (BUNDLE_ID, CLAIM_ID)


class PasError(RuntimeError):
    """The fixture is missing, or Greenlight's `$submit` answer is not the one measured."""


def _fixture(path: Path) -> dict[str, Any]:
    try:
        loaded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PasError(f"cannot read the Inferno PAS fixture {path}: {exc}") from exc
    if not isinstance(loaded, dict) or loaded.get("resourceType") != "Bundle":
        raise PasError(f"{path}: expected a Bundle")
    return loaded


def request_bundle(fixture: Path = FIXTURE) -> dict[str, Any]:
    """The approval variant of the kit's request Bundle with `BUNDLE_ID` / `CLAIM_ID` in place of
    the Bundle's and the Claim's identifier values."""
    bundle = variant(VARIANT, _fixture(fixture))
    entries = bundle.get("entry") or [{}]
    claim = entries[0].get("resource") or {}
    identifiers = claim.get("identifier") or []
    if claim.get("resourceType") != "Claim" or not identifiers:
        raise PasError(f"{fixture}: the first entry is not a Claim with an identifier")
    bundle["identifier"] = {**(bundle.get("identifier") or {}), "value": BUNDLE_ID}
    identifiers[0] = {**identifiers[0], "value": CLAIM_ID}
    return bundle


def new_values() -> list[str]:
    """A fresh Bundle identifier value and Claim identifier value (same length every time)."""
    return [f"BENCH-{uuid.uuid4().hex}", f"BENCH-{uuid.uuid4().hex}"]


@dataclass(frozen=True)
class RequestTemplate:
    """A `$submit` call: the head with `%d` for Content-Length, the body with a `%b` slot for the
    Bundle identifier and one for the Claim identifier (in the order they appear)."""

    head: bytes
    body: bytes
    body_slots: tuple[str, ...]

    def fill(self, values: list[str]) -> bytes:
        """The body of one request, for seeding and smoke tests outside the load generator.

        `values` are in `SLOTS` order (as `new_values` gives them and pool lines hold them)."""
        by_slot = dict(zip(SLOTS, values, strict=True))
        return self.body % tuple(by_slot[name].encode("ascii") for name in self.body_slots)


def request_template(host: str, port: int, token: str | None) -> RequestTemplate:
    raw = orjson.dumps(request_bundle()).replace(b"%", b"%%")
    found = []
    for placeholder in SLOTS:
        marker = placeholder.encode("ascii")
        if raw.count(marker) != 1:
            raise PasError(f"{placeholder} appears {raw.count(marker)} times in the body")
        found.append((raw.index(marker), placeholder))
        raw = raw.replace(marker, b"%b")
    head = pooled_head(SUBMIT_PATH, host, port, token, FHIR_JSON)
    return RequestTemplate(head, raw, tuple(name for _, name in sorted(found)))


def write_pool(path: Path, template: RequestTemplate, count: int) -> float:
    """Write `count` lines of fresh identifier values into `path`, tab-separated in the order of
    `template.body_slots` (the load generator fills the body's slots in that order); the seconds
    spent."""
    started = time.perf_counter()
    lines = []
    for _ in range(count):
        by_slot = dict(zip(SLOTS, new_values(), strict=True))
        lines.append("\t".join(by_slot[name] for name in template.body_slots))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return time.perf_counter() - started


def review_actions(bundle: dict[str, Any]) -> list[str]:
    """The X12 306 `reviewAction` codes of the response's ClaimResponse items, in item order."""
    entries = bundle.get("entry") or [{}]
    claim_response = entries[0].get("resource") or {}
    found = []
    for item in claim_response.get("item") or []:
        for adjudication in item.get("adjudication") or []:
            for action in adjudication.get("extension") or []:
                for part in action.get("extension") or []:
                    for coding in (part.get("valueCodeableConcept") or {}).get("coding") or []:
                        if coding.get("system") == X12_306:
                            found.append(str(coding.get("code")))
    return found


@dataclass(frozen=True)
class PasSeed:
    """Greenlight's answer to one submission (for the bare app) and facts for the report."""

    answer: bytes
    request_size: int
    facts: dict[str, str]


def _submit(client: httpx.Client, body: bytes, what: str) -> httpx.Response:
    response = client.post(SUBMIT_PATH, content=body, headers={"Content-Type": FHIR_JSON})
    if response.status_code != 200:
        raise PasError(f"{what}: expected 200, got {response.status_code}: {response.text[:500]}")
    return response


def _claim_response(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    entries = (body.get("entry") if isinstance(body, dict) else None) or [{}]
    resource: dict[str, Any] = entries[0].get("resource") or {}
    return resource


def seed(client: httpx.Client, template: RequestTemplate) -> PasSeed:
    """Submit twice with fresh identifiers against Greenlight (`client`: its base URL, Accept and
    token) and check that each is a new request certified at once (A1), and that resending the
    first body gives its stored answer (the path the fresh identifiers avoid); the first answer
    is captured."""
    first_body = template.fill(new_values())
    first = _submit(client, first_body, f"seeding POST {SUBMIT_PATH}")
    actions = review_actions(first.json())
    claim_response = _claim_response(first)
    if actions != [CERTIFIED] or claim_response.get("outcome") != "complete":
        raise PasError(
            f"$submit of the {VARIANT} variant answered reviewAction {actions} "
            f"(outcome {claim_response.get('outcome')!r}), expected [{CERTIFIED!r}] "
            "(is the demo payer loaded?)"
        )
    if not claim_response.get("preAuthRef"):
        raise PasError("the certified ClaimResponse has no preAuthRef")
    second_response = _submit(client, template.fill(new_values()), "seeding a second submission")
    second = _claim_response(second_response)
    if review_actions(second_response.json()) != [CERTIFIED] or second.get(
        "id"
    ) == claim_response.get("id"):
        raise PasError(
            "a second submission with fresh identifiers was not a new certified request "
            f"(ClaimResponse {second.get('id')} vs {claim_response.get('id')})"
        )
    again = _claim_response(_submit(client, first_body, "seeding a resubmission"))
    if again.get("id") != claim_response.get("id"):
        raise PasError(
            "resending the same Bundle did not return its stored answer "
            f"(ClaimResponse {again.get('id')} vs {claim_response.get('id')})"
        )
    return PasSeed(
        answer=first.content,
        request_size=len(first_body),
        facts={
            "pas-submit": (
                f"the Inferno PAS 2.0.1 approval payload as `{VARIANT}` (app/pas/variants.py: "
                f"CPT 72148 by gold-carded NPI 1304582715; {len(first_body):,} B) with a fresh "
                f"Bundle.identifier and Claim.identifier per request -> reviewAction "
                f"{CERTIFIED}, preAuthRef {claim_response['preAuthRef']} "
                f"({len(first.content):,} B); a resent Bundle gets its stored answer instead"
            ),
        },
    )
