"""The one registry of what this server really implements.

`/fhir/metadata` (CapabilityStatement) and routing are both generated from it, so the server never
advertises an interaction that does not work. Later features (operations, CDS services) register
here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

ParamType = Literal["token", "reference", "uri", "date", "string"]
Interaction = Literal[
    "read", "vread", "update", "delete", "create", "search-type", "history-instance"
]

STANDARD_INTERACTIONS: tuple[Interaction, ...] = (
    "read",
    "vread",
    "update",
    "delete",
    "create",
    "search-type",
    "history-instance",
)


@dataclass(frozen=True)
class SearchParam:
    """A search parameter and the elements (dotted paths) whose values it indexes."""

    name: str
    type: ParamType
    paths: tuple[str, ...]
    documentation: str
    target: str | None = None  # for references: only references to this resource type
    definition: str | None = None

    @cached_property
    def _steps(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(path.split(".")) for path in self.paths)

    def values(self, resource: dict[str, Any]) -> list[Any]:
        """The values at the param's paths, in document order: lists (repeating elements) are
        entered at every step, missing elements and nulls skipped. Walked level by level in
        plain loops rather than by recursive generators: indexing runs on every write."""
        found: list[Any] = []
        for steps in self._steps:
            level: list[Any] = [resource]
            for name in steps:
                following: list[Any] = []
                for node in level:
                    if isinstance(node, dict):
                        value = node.get(name)
                        if isinstance(value, list):
                            _extend_flat(following, value)
                        elif value is not None:
                            following.append(value)
                level = following
            found.extend(level)
        return found


def _extend_flat(out: list[Any], items: list[Any]) -> None:
    """Append `items` to `out`, lists (at any depth) replaced by their items, nulls left out."""
    for item in items:
        if isinstance(item, list):
            _extend_flat(out, item)
        elif item is not None:
            out.append(item)


@dataclass(frozen=True)
class ResourceSpec:
    """A resource type served at `/fhir/<type>`, its interactions and search parameters."""

    type: str
    search_params: tuple[SearchParam, ...]
    interactions: tuple[Interaction, ...] = STANDARD_INTERACTIONS
    profiles: tuple[str, ...] = ()

    def param(self, name: str) -> SearchParam | None:
        return next((p for p in self.search_params if p.name == name), None)


@dataclass(frozen=True)
class OperationSpec:
    """A FHIR operation (e.g. `Claim/$submit`) implemented by a router module."""

    name: str
    resource_types: tuple[str, ...]
    definition: str
    documentation: str = ""


def _core(code: str) -> str:
    return f"http://hl7.org/fhir/SearchParameter/{code}"


def _identifier() -> SearchParam:
    return SearchParam(
        "identifier", "token", ("identifier",), "A business identifier (system|value)"
    )


def _status(type_: str) -> SearchParam:
    return SearchParam(
        "status", "token", ("status",), f"{type_}.status", definition=_core(f"{type_}-status")
    )


def _ref(name: str, path: str, target: str | None = None) -> SearchParam:
    return SearchParam(name, "reference", (path,), f"Reference at {path}", target=target)


def _string(name: str, *paths: str) -> SearchParam:
    return SearchParam(
        name, "string", paths, f"Case-insensitive prefix match on {', '.join(paths)}"
    )


def _canonical() -> tuple[SearchParam, ...]:
    return (
        SearchParam("url", "uri", ("url",), "The canonical URL"),
        SearchParam("version", "token", ("version",), "The business version"),
    )


def _subject_and_patient(path: str = "subject") -> tuple[SearchParam, ...]:
    return (
        _ref("subject", f"{path}.reference"),
        _ref("patient", f"{path}.reference", target="Patient"),
    )


def _spec(
    type_: str,
    *params: SearchParam,
    identifier: bool = True,
    status: bool = True,
    interactions: tuple[Interaction, ...] = STANDARD_INTERACTIONS,
) -> ResourceSpec:
    common: list[SearchParam] = []
    if identifier:
        common.append(_identifier())
    if status:
        common.append(_status(type_))
    return ResourceSpec(type_, (*common, *params), interactions)


RESOURCES: tuple[ResourceSpec, ...] = (
    _spec("Patient", _string("family", "name.family"), status=False),
    _spec(
        "Coverage",
        _ref("beneficiary", "beneficiary.reference"),
        _ref("patient", "beneficiary.reference", target="Patient"),
    ),
    _spec("Organization", _string("name", "name", "alias"), status=False),
    _spec("Practitioner", _string("family", "name.family"), status=False),
    _spec(
        "PractitionerRole",
        _ref("practitioner", "practitioner.reference", target="Practitioner"),
        _ref("organization", "organization.reference", target="Organization"),
        _ref("location", "location.reference", target="Location"),
        status=False,
    ),
    _spec("Location", _string("name", "name", "alias")),
    _spec("Encounter", *_subject_and_patient()),
    _spec("ServiceRequest", *_subject_and_patient()),
    _spec("DeviceRequest", *_subject_and_patient()),
    _spec("MedicationRequest", *_subject_and_patient()),
    _spec("Questionnaire", *_canonical()),
    _spec(
        "QuestionnaireResponse",
        *_subject_and_patient(),
        SearchParam(
            "questionnaire",
            "uri",
            ("questionnaire",),
            "The Questionnaire the response answers",
            definition=_core("QuestionnaireResponse-questionnaire"),
        ),
        SearchParam(
            "context",
            "reference",
            ("extension.valueReference.reference",),
            "The orders and coverages a response documents (DTR qr-context)",
            definition="http://hl7.org/fhir/us/davinci-dtr/SearchParameter/dtr-context",
        ),
        SearchParam(
            "_tag",
            "token",
            ("meta.tag",),
            "A tag (system|code); DTR responses carry their CRD coverage assertion ids",
            definition=_core("Resource-tag"),
        ),
    ),
    _spec("Library", *_canonical()),
    _spec("ValueSet", *_canonical()),
    _spec("Claim", _ref("patient", "patient.reference", target="Patient")),
    _spec("ClaimResponse", _ref("patient", "patient.reference", target="Patient")),
    _spec("Subscription", identifier=False),
    _spec("Task", *_subject_and_patient(path="for")),
    _spec("CommunicationRequest", *_subject_and_patient()),
    _spec(
        "AuditEvent",
        _ref("patient", "entity.what.reference", target="Patient"),
        identifier=False,
        status=False,
        # the audit trail is append-only (`app.store.audit_log`)
        interactions=("read", "vread", "create", "search-type", "history-instance"),
    ),
)

COMMON_PARAMS: tuple[SearchParam, ...] = (
    SearchParam("_id", "token", ("id",), "The logical id", definition=_core("Resource-id")),
    SearchParam(
        "_lastUpdated",
        "date",
        ("meta.lastUpdated",),
        "When the resource version last changed",
        definition=_core("Resource-lastUpdated"),
    ),
)

RESULT_PARAMS: tuple[str, ...] = ("_count", "_offset", "_summary", "_format", "_pretty", "_total")


@dataclass
class Registry:
    """What is implemented: resource types, operations, and hooks for later registrations."""

    resources: dict[str, ResourceSpec] = field(
        default_factory=lambda: {spec.type: spec for spec in RESOURCES}
    )
    operations: list[OperationSpec] = field(default_factory=list)
    capability_contributors: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def resource(self, resource_type: str) -> ResourceSpec | None:
        return self.resources.get(resource_type)

    def add_operation(self, operation: OperationSpec) -> None:
        self.operations.append(operation)


REGISTRY = Registry()
