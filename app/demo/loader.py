"""Loading the demo payer into the store: `greenlight demo-data`.

Idempotent: every resource is written under its fixed logical id, and a resource whose stored
content (ignoring `meta.versionId` and `meta.lastUpdated`) already equals the demo content is left
alone, so a second run creates no new versions. Everything is written in one transaction and each
resource is checked against the FHIR R4 models first, so a failed load leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.config import Settings
from app.demo.payer import (
    MEMBERS,
    PAYER_NAME,
    PAYER_ORGANIZATION_ID,
    Provider,
    demo_resources,
    locations,
    provider_rows,
)
from app.dtr.content import content_for
from app.fhir.models import check_resource
from app.registry import REGISTRY
from app.store.db import create_database
from app.store.repository import ResourceStore
from app.store.stored import StoredResource

Outcome = Literal["created", "updated", "unchanged"]
OUTCOMES: tuple[Outcome, ...] = ("created", "updated", "unchanged")


@dataclass(frozen=True)
class LoadedResource:
    resource_type: str
    id: str
    outcome: Outcome
    version_id: int


@dataclass(frozen=True)
class MemberRow:
    name: str
    member_id: str
    subscriber_id: str
    plan: str
    status: str
    patient_id: str
    coverage_id: str


@dataclass(frozen=True)
class LocationRow:
    name: str
    location_id: str
    kind: str
    organization: str


@dataclass
class LoadReport:
    """What one load did: the outcome per resource, and the members and providers it holds."""

    resources: list[LoadedResource] = field(default_factory=list)
    members: list[MemberRow] = field(default_factory=list)
    providers: list[Provider] = field(default_factory=list)
    locations: list[LocationRow] = field(default_factory=list)

    def counts(self) -> dict[str, Counter[Outcome]]:
        """Outcome counts per resource type, in load order."""
        result: dict[str, Counter[Outcome]] = {}
        for item in self.resources:
            result.setdefault(item.resource_type, Counter())[item.outcome] += 1
        return result

    def total(self, outcome: Outcome) -> int:
        return sum(1 for item in self.resources if item.outcome == outcome)

    @property
    def changed(self) -> bool:
        return any(item.outcome != "unchanged" for item in self.resources)

    def describe(self) -> str:
        """A readable summary: counts per type, then the members and providers tables."""
        lines = [
            f"Demo payer: {PAYER_NAME} (Organization/{PAYER_ORGANIZATION_ID})",
            f"{len(self.resources)} resources: "
            + ", ".join(f"{self.total(o)} {o}" for o in OUTCOMES),
            "",
        ]
        type_rows = [
            [resource_type, *(str(counter[o]) for o in OUTCOMES)]
            for resource_type, counter in self.counts().items()
        ]
        lines += _table(["resource type", *OUTCOMES], type_rows)
        lines += ["", f"Members ({len(self.members)})"]
        lines += _table(
            ["name", "member id", "subscriber id", "plan", "coverage", "Patient / Coverage"],
            [
                [
                    m.name,
                    m.member_id,
                    m.subscriber_id,
                    m.plan,
                    m.status,
                    f"{m.patient_id} / {m.coverage_id}",
                ]
                for m in self.members
            ],
        )
        lines += ["", f"Providers ({len(self.providers)})"]
        lines += _table(
            ["name", "NPI", "resource", "note"],
            [
                [p.name, ", ".join(p.npis), f"{p.resource_type}/{p.id}", p.note]
                for p in self.providers
            ],
        )
        lines += ["", f"Locations ({len(self.locations)})"]
        lines += _table(
            ["name", "resource", "site of care", "managed by"],
            [
                [loc.name, f"Location/{loc.location_id}", loc.kind, loc.organization]
                for loc in self.locations
            ],
        )
        return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return [line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def _content(body: dict[str, Any]) -> dict[str, Any]:
    """A stored resource without the server-assigned `meta.versionId` and `meta.lastUpdated`."""
    content = dict(body)
    meta = {
        k: v
        for k, v in (content.pop("meta", None) or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    if meta:
        content["meta"] = meta
    return content


def _unchanged(current: StoredResource | None, resource: dict[str, Any]) -> bool:
    if current is None or current.deleted:
        return False
    return _content(current.json()) == _content(resource)


def member_rows() -> list[MemberRow]:
    return [
        MemberRow(
            name=m.display_name,
            member_id=m.member_id_value,
            subscriber_id=m.subscriber_id,
            plan=m.plan.name,
            status=m.status,
            patient_id=m.patient_id,
            coverage_id=m.coverage_id,
        )
        for m in MEMBERS
    ]


def location_rows() -> list[LocationRow]:
    rows: list[LocationRow] = []
    for location in locations():
        kinds = [c.get("display", c["code"]) for t in location.get("type", []) for c in t["coding"]]
        managed_by = location.get("managingOrganization", {}).get("reference", "")
        rows.append(LocationRow(location["name"], location["id"], "; ".join(kinds), managed_by))
    return rows


async def load_into(
    store: ResourceStore, documentation: Sequence[dict[str, Any]] = ()
) -> LoadReport:
    """Write the demo payer (and the payer's DTR documentation content: Questionnaires,
    Libraries, ValueSets) into `store` in one transaction; unchanged resources are skipped."""
    resources = [*demo_resources(), *documentation]
    for resource in resources:
        check_resource(resource, path_prefix=f"{resource['resourceType']}/{resource['id']}")
    report = LoadReport(members=member_rows(), providers=provider_rows(), locations=location_rows())
    async with store.transaction() as tx:
        for resource in resources:
            resource_type, resource_id = resource["resourceType"], resource["id"]
            current = await tx.current(resource_type, resource_id)
            if current is not None and _unchanged(current, resource):
                report.resources.append(
                    LoadedResource(resource_type, resource_id, "unchanged", current.version_id)
                )
                continue
            stored, created = await tx.update(resource, resource_id)
            outcome: Outcome = "created" if current is None or created else "updated"
            report.resources.append(
                LoadedResource(resource_type, resource_id, outcome, stored.version_id)
            )
    return report


async def load_demo_data(settings: Settings) -> LoadReport:
    """Load the demo payer into the database of `settings` (migrations must already be applied)."""
    documentation = content_for(settings.rules_dir.resolve()).resources()
    database = create_database(settings.database_url)
    try:
        return await load_into(ResourceStore(database, REGISTRY), documentation)
    finally:
        await database.dispose()
