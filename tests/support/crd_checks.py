"""What Inferno's CRD server suite (davinci-crd-test-kit, `crd_server`) asserts, as pure functions.

The kit cannot run here (no Ruby gems), so its assertions are re-implemented from its source and
from /work/shared/spec/INFERNO-KITS.md §2, test by test. Every `check_*` function takes parsed
JSON and returns a list of human-readable error strings; an empty list means the kit's test
would pass. Nothing here performs I/O except reading two FHIR packages (CRD 2.0.1 and R4 core)
from ../shared/fhir-packages once, on first use. `README-crd-checks.md` maps each function to
the kit test id it mirrors.

Conventions:

* Profile validation (Inferno's HL7 validator) is a callback, `validate(resource, profile_url)`
  returning error strings; `profile_url` is None for "the base FHIR resource". It defaults to a
  no-op, so only the kit's own rules are applied.
* Messages for rules the kit does not have but Greenlight applies start with `[greenlight]`.
  Messages for the IG invariants of ext-coverage-information start with the invariant key.
* Values that Ruby treats as "blank" (nil, false, empty or whitespace-only strings, empty
  arrays and objects) are treated the same way, since the kit's checks rely on `blank?`.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

PACKAGES_DIR: Final = Path(__file__).resolve().parents[3] / "shared" / "fhir-packages"
CRD_PACKAGE: Final = PACKAGES_DIR / "davinci-crd-2.0.1.tgz"
R4_CORE_PACKAGE: Final = PACKAGES_DIR / "hl7.fhir.r4.core.tgz"

JsonObject = Mapping[str, Any]
#: `validate(resource, profile_url) -> errors`; `profile_url` None means the base resource.
Validator = Callable[[JsonObject, str | None], list[str]]
#: Per-hook results keyed by kit test id: errors, or None when the kit would skip the test.
HookResults = Mapping[str, list[str] | None]

HOOKS: Final = (
    "appointment-book",
    "encounter-start",
    "encounter-discharge",
    "order-select",
    "order-dispatch",
    "order-sign",
)
#: Hooks whose response must carry `systemActions` and a Coverage Information action.
PRIMARY_HOOKS: Final = frozenset({"appointment-book", "order-sign", "order-dispatch"})
ORDER_TYPES: Final = (
    "DeviceRequest",
    "MedicationRequest",
    "NutritionOrder",
    "ServiceRequest",
    "VisionPrescription",
)
#: Resource types a Coverage Information system action updates, per hook
#: (coverage_information_system_action_received_test.rb `resources_by_hook`).
COVERAGE_INFO_TARGETS: Final[Mapping[str, tuple[str, ...]]] = {
    "appointment-book": ("Appointment",),
    "order-sign": ORDER_TYPES,
    "order-dispatch": ORDER_TYPES,
    "order-select": ORDER_TYPES,
    "encounter-start": ("Encounter",),
    "encounter-discharge": ("Encounter",),
}
ADDITIONAL_ORDERS_TYPES: Final = (
    "CommunicationRequest",
    "Device",
    "DeviceRequest",
    "Medication",
    "MedicationRequest",
    "NutritionOrder",
    "ServiceRequest",
    "VisionPrescription",
)
PROPOSE_ALTERNATE_TYPES: Final = (
    "Device",
    "DeviceRequest",
    "Encounter",
    "Medication",
    "MedicationRequest",
    "NutritionOrder",
    "ServiceRequest",
    "VisionPrescription",
)

_CRD: Final = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/"
_US_CORE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/"
#: The kit's `structure_definition_map`: the profile each resource type is validated against.
PROFILE_BY_TYPE: Final[Mapping[str, str]] = {
    "Practitioner": _CRD + "profile-practitioner",
    "PractitionerRole": _US_CORE + "us-core-practitionerrole",
    "Patient": _CRD + "profile-patient",
    "Encounter": _CRD + "profile-encounter",
    "Appointment": _CRD + "profile-appointment",
    "DeviceRequest": _CRD + "profile-devicerequest",
    "MedicationRequest": _CRD + "profile-medicationrequest",
    "NutritionOrder": _CRD + "profile-nutritionorder",
    "ServiceRequest": _CRD + "profile-servicerequest",
    "VisionPrescription": _CRD + "profile-visionprescription",
    "Medication": _US_CORE + "us-core-medication",
    "Device": _CRD + "profile-device",
    "CommunicationRequest": _CRD + "profile-communicationrequest",
    "Task": _CRD + "profile-taskquestionnaire",
    "Coverage": _CRD + "profile-coverage",
    "Location": _CRD + "profile-location",
    "Organization": _CRD + "profile-organization",
}
COVERAGE_INFO_URL: Final = _CRD + "ext-coverage-information"
CRD_TEMP_SYSTEM: Final = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
CONFIGURATION_OPTIONS_KEY: Final = "davinci-crd.configuration-options"

# Kit test ids, used as keys by `run_hook_group` and `check_across_hooks`.
T_REQUIRED_FIELDS: Final = "crd_service_request_required_fields_validation"
T_CONTEXT: Final = "crd_service_request_context_validation"
T_OPTIONAL_FIELDS: Final = "crd_service_request_optional_fields_validation"
T_RESPONSE: Final = "crd_service_response_validation"
T_CARD_OPTIONALS: Final = "crd_card_optional_fields_validation"
T_EXTERNAL_REFERENCE: Final = "crd_external_reference_card_validation"
T_LAUNCH_SMART: Final = "crd_launch_smart_app_card_validation"
T_INSTRUCTIONS: Final = "crd_valid_instructions_card_received"
T_COVERAGE_RECEIVED: Final = "crd_coverage_info_system_action_received"
T_COVERAGE_VALID: Final = "crd_coverage_info_system_action_validation"
T_PROPOSE_ALTERNATE: Final = "crd_propose_alternate_request_card_validation"
T_ADDITIONAL_ORDERS: Final = "crd_additional_orders_card_validation"
T_FORM_COMPLETION: Final = "crd_request_form_completion_response_validation"
T_CREATE_UPDATE_COVERAGE: Final = "crd_create_or_update_coverage_info_response_validation"

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_FHIR_DATE = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$"
)
_FHIR_CODE = re.compile(r"^[^\s]+( [^\s]+)*$")
_COVERAGE_REF = re.compile(r"(^|/)Coverage/[A-Za-z0-9\-.]{1,64}(/_history/[^/]+)?$")
_PREFETCH_TOKEN = re.compile(r"\{\{(.*?)\}\}")
#: CDS Hooks prefetch tokens other than `context.*` (CRD 2.2 adds FHIRPath and `%key`).
_USER_TOKENS: Final = frozenset(
    {
        "userPractitionerId",
        "userPractitionerRoleId",
        "userPatientId",
        "userRelatedPersonId",
        "today()",
    }
)


def _no_validation(resource: JsonObject, profile_url: str | None) -> list[str]:
    return []


# --------------------------------------------------------------------------------------------
# Ruby-like helpers


def _blank(value: Any) -> bool:
    """Ruby's `blank?`: nil, false, whitespace-only strings and empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict | tuple):
        return len(value) == 0
    return False


def _truthy(value: Any) -> bool:
    """Ruby truthiness: everything but nil and false (so "" and [] are truthy)."""
    return value is not None and value is not False


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "String":
        return isinstance(value, str)
    if kind == "Hash":
        return isinstance(value, dict)
    if kind == "Array":
        return isinstance(value, list)
    if kind == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "URL":
        return valid_url(value)
    raise ValueError(f"unknown kind {kind}")


def _show(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _presence_and_type(
    obj: JsonObject, field: str, kind: str, where: str, *, required: bool = True
) -> list[str]:
    """The kit's `validate_presence_and_type`: present (truthy), of the type, and not blank."""
    value = obj.get(field)
    if required and not _truthy(value):
        return [f"{where} does not contain required field `{field}`."]
    errors: list[str] = []
    if not _is_kind(value, kind):
        what = "is not a valid URL" if kind == "URL" else f"is not of type `{kind}`"
        errors.append(f"{where} field `{field}` {what}: {_show(value)}.")
    if _blank(value):
        errors.append(f"{where} field `{field}` should not be an empty {kind}.")
    return errors


def valid_url(value: Any) -> bool:
    """The kit's `valid_url?`: an http(s) URL with a host."""
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host)


def is_uuid(value: Any) -> bool:
    """The kit's `guid?` (case-insensitive 8-4-4-4-12 hex)."""
    return isinstance(value, str) and _UUID.match(value) is not None


def _split_reference(reference: str) -> tuple[str, str]:
    """Ruby `reference.split('/')` then `[type, id]` (trailing empty parts dropped)."""
    parts = reference.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    first = parts[0] if parts else ""
    second = parts[1] if len(parts) > 1 else ""
    return first, second


def _reference_errors(
    reference: Any, field: str, *, allowed_types: Sequence[str] | None = None
) -> list[str]:
    """The kit's `resource_reference_check` (server side: no FHIR read of the target)."""
    if not isinstance(reference, str):
        return []
    resource_type, resource_id = _split_reference(reference)
    if _blank(resource_type) or _blank(resource_id):
        return [f"Invalid `{field}` format. Expected `{{resourceType}}/{{id}}`, got `{reference}`."]
    if allowed_types is not None and resource_type not in allowed_types:
        return [
            f"Unsupported resource type: `{field}` type should be one of "
            f"{', '.join(allowed_types)}, but received {resource_type}."
        ]
    return []


def _plain_id_errors(context: JsonObject, hook: str, fields: Iterable[str]) -> list[str]:
    errors = []
    for field in fields:
        value = context.get(field)
        if isinstance(value, str) and "/" in value:
            errors.append(
                f"`{field}` in {hook} context should be a plain ID, not a reference. Got `{value}`."
            )
    return errors


def _resource_type(resource: Any) -> str | None:
    """What `FHIR.from_contents(...)&.resourceType` gives: a known R4 type or None."""
    if not isinstance(resource, dict):
        return None
    resource_type = resource.get("resourceType")
    if isinstance(resource_type, str) and resource_type in r4_resource_types():
        return resource_type
    return None


def _ref_of(resource: JsonObject) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


# --------------------------------------------------------------------------------------------
# Package data (read once)


def _read_package(path: Path, names: Collection[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with tarfile.open(path) as archive:
        for name in names:
            handle = archive.extractfile(f"package/{name}")
            if handle is not None:
                found[name] = json.loads(handle.read().decode("utf-8-sig"))
    return found


@lru_cache(maxsize=1)
def r4_resource_types() -> frozenset[str]:
    """Every concrete R4 resource type, from the R4 core package's `.index.json`."""
    index = _read_package(R4_CORE_PACKAGE, [".index.json"])[".index.json"]
    base = "http://hl7.org/fhir/StructureDefinition/"
    return frozenset(
        entry["type"]
        for entry in index["files"]
        if entry.get("resourceType") == "StructureDefinition"
        and entry.get("kind") == "resource"
        and entry.get("url") == base + str(entry.get("type"))
        and entry["type"] not in ("Resource", "DomainResource")
    )


@lru_cache(maxsize=1)
def _crd_package() -> Mapping[str, Any]:
    with tarfile.open(CRD_PACKAGE) as archive:
        wanted = [
            member
            for member in archive.getmembers()
            if member.isfile()
            and member.name.count("/") == 1
            and member.name.endswith(".json")
            and member.name.split("/")[1].split("-")[0]
            in ("StructureDefinition", "ValueSet", "CodeSystem")
        ]
        by_url: dict[str, Any] = {}
        for member in wanted:
            handle = archive.extractfile(member)
            if handle is None:
                continue
            resource = json.loads(handle.read().decode("utf-8-sig"))
            if isinstance(resource, dict) and isinstance(resource.get("url"), str):
                by_url[resource["url"]] = resource
    return by_url


def _descendants(concepts: Iterable[Mapping[str, Any]], parent: str) -> set[str]:
    found: set[str] = set()
    for concept in concepts:
        children = concept.get("concept", [])
        if concept.get("code") == parent:
            stack = list(children)
            while stack:
                child = stack.pop()
                found.add(child["code"])
                stack.extend(child.get("concept", []))
        else:
            found |= _descendants(children, parent)
    return found


@lru_cache(maxsize=32)
def crd_value_set(url: str) -> frozenset[tuple[str, str]]:
    """`(system, code)` pairs of a CRD 2.0.1 value set (enumerated or `descendent-of`)."""
    value_set = _crd_package()[url]
    pairs: set[tuple[str, str]] = set()
    for include in value_set.get("compose", {}).get("include", []):
        system = include.get("system", "")
        for concept in include.get("concept", []):
            pairs.add((system, concept["code"]))
        for filt in include.get("filter", []):
            if filt.get("property") == "concept" and filt.get("op") == "descendent-of":
                code_system = _crd_package().get(system)
                if code_system is None:
                    raise LookupError(f"{url}: CodeSystem {system} is not in the CRD package")
                pairs |= {(system, c) for c in _descendants(code_system["concept"], filt["value"])}
            else:
                raise NotImplementedError(f"{url}: filter {filt} is not supported")
    return frozenset(pairs)


def crd_codes(url: str) -> frozenset[str]:
    """The codes (any system) of a CRD 2.0.1 value set."""
    return frozenset(code for _system, code in crd_value_set(url))


@dataclass(frozen=True)
class ExtensionSlice:
    """One sub-extension of a complex extension, as the 2.0.1 StructureDefinition defines it."""

    name: str
    url: str
    min: int
    max: int | None  # None = *
    value_min: int
    value_max: int | None
    value_types: tuple[str, ...]
    required_value_set: str | None
    children: tuple[ExtensionSlice, ...]


def _card_max(text: str) -> int | None:
    return None if text == "*" else int(text)


def _slices(elements: Mapping[str, Mapping[str, Any]], prefix: str) -> tuple[ExtensionSlice, ...]:
    """The slices `prefix.extension:<name>` (not deeper) with their value and children."""
    pattern = re.compile(re.escape(prefix) + r"\.extension:([^.:]+)$")
    found = []
    for element_id, element in elements.items():
        match = pattern.match(element_id)
        if match is None:
            continue
        own = element_id
        value = elements.get(own + ".value[x]", {})
        binding = value.get("binding") or {}
        found.append(
            ExtensionSlice(
                name=match.group(1),
                url=str(elements[own + ".url"].get("fixedUri", match.group(1))),
                min=int(element.get("min", 0)),
                max=_card_max(str(element.get("max", "*"))),
                value_min=int(value.get("min", 0)),
                value_max=_card_max(str(value.get("max", "1"))),
                value_types=tuple(t["code"] for t in value.get("type", [])),
                required_value_set=(
                    binding.get("valueSet") if binding.get("strength") == "required" else None
                ),
                children=_slices(elements, own),
            )
        )
    return tuple(found)


@lru_cache(maxsize=1)
def coverage_information_slices() -> tuple[ExtensionSlice, ...]:
    """The sub-extensions of ext-coverage-information in CRD 2.0.1, read from the package."""
    definition = _crd_package()[COVERAGE_INFO_URL]
    elements = {e["id"]: e for e in definition["snapshot"]["element"]}
    return _slices(elements, "Extension")


@lru_cache(maxsize=1)
def card_type_codes() -> frozenset[str]:
    """CRD 2.0.1 card types (ValueSet cardType: descendants of `_cardType` in the temp system)."""
    return crd_codes("http://hl7.org/fhir/us/davinci-crd/ValueSet/cardType")


# --------------------------------------------------------------------------------------------
# 1.2 / 1.3 Discovery


def _ok_json(status: int, body: str | bytes, what: str) -> list[str]:
    """HTTP 200 and a body that parses as JSON (the kit's status and JSON assertions)."""
    errors = []
    if status != 200:
        errors.append(f"Unexpected response status: expected 200, but received {status}.")
    try:
        json.loads(body)
    except (ValueError, TypeError):
        errors.append(f"{what} response body is not valid JSON.")
    return errors


def check_discovery_endpoint(status: int, body: str | bytes) -> list[str]:
    """`crd_discovery_endpoint_test`: HTTP 200 and a JSON body."""
    return _ok_json(status, body, "Discovery")


def check_discovery(document: Any) -> list[str]:
    """`crd_discovery_services_validation`: `services` array; each has hook/description/id.

    An empty `services` array makes the kit skip; it is reported as no error here.
    """
    if not isinstance(document, dict) or not _truthy(document.get("services")):
        return ["Discovery response did not contain `services`."]
    services = document["services"]
    if not isinstance(services, list):
        return ["Services field of the CDS Discovery response object is not an array."]
    errors = []
    for index, service in enumerate(services):
        if not isinstance(service, dict):
            errors.append(f"services[{index}] is not an object.")
            continue
        for field in ("hook", "description", "id"):
            if not _truthy(service.get(field)):
                errors.append(f"services[{index}] did not contain required field: `{field}`.")
            elif not isinstance(service[field], str):
                errors.append(f"services[{index}]: field `{field}` is not of type String.")
    return errors


def check_discovery_crd(
    document: Any,
    *,
    card_types: Iterable[str] = ("coverage-info",),
    hooks: Iterable[str] = HOOKS,
    extra_option_codes: Iterable[str] = (),
) -> list[str]:
    """[greenlight] CRD discovery rules beyond the kit (CRD 2.0.1 discovery + IG §2.1, §2.3).

    Every service has `extension["davinci-crd.configuration-options"]`: entries with `code`,
    `type` (boolean|integer), `name`, `description` and a `default` of that JSON type; codes,
    names and descriptions unique per service; boolean option codes from the 2.0.1 cardType
    value set (plus `extra_option_codes`); one boolean option for each of `card_types`.
    Every service has a `prefetch` object of `{{...}}` templates including `patient` and
    `coverage`. Each of `hooks` has a service.
    """
    errors = check_discovery(document)
    if errors:
        return errors
    services: list[Any] = document["services"]
    allowed_codes = card_type_codes() | frozenset(extra_option_codes)
    wanted_types = tuple(card_types)
    for index, service in enumerate(services):
        if not isinstance(service, dict):
            continue
        where = f"[greenlight] services[{index}] ({service.get('id')})"
        errors += _configuration_option_errors(service, where, allowed_codes, wanted_types)
        errors += _prefetch_errors(service.get("prefetch"), where)
    present = {service.get("hook") for service in services if isinstance(service, dict)}
    errors += [f"[greenlight] no service for the `{h}` hook." for h in hooks if h not in present]
    ids = [service.get("id") for service in services if isinstance(service, dict)]
    errors += [
        f"[greenlight] service id `{i}` is used more than once."
        for i in sorted({str(i) for i in ids if ids.count(i) > 1})
    ]
    return errors


def _configuration_option_errors(
    service: JsonObject, where: str, allowed_codes: frozenset[str], card_types: Sequence[str]
) -> list[str]:
    extension = service.get("extension")
    options = extension.get(CONFIGURATION_OPTIONS_KEY) if isinstance(extension, dict) else None
    if not isinstance(options, list) or not options:
        return [f"{where} has no `extension.{CONFIGURATION_OPTIONS_KEY}` array."]
    errors = []
    seen: dict[str, set[str]] = {"code": set(), "name": set(), "description": set()}
    boolean_codes = set()
    for number, option in enumerate(options):
        at = f"{where} option[{number}]"
        if not isinstance(option, dict):
            errors.append(f"{at} is not an object.")
            continue
        for field in ("code", "type", "name", "description"):
            value = option.get(field)
            if not isinstance(value, str) or _blank(value):
                errors.append(f"{at} `{field}` must be a non-empty string.")
            elif field in seen:
                if value in seen[field]:
                    errors.append(f"{at} `{field}` `{value}` is not unique in the service.")
                seen[field].add(value)
        option_type = option.get("type")
        if option_type not in ("boolean", "integer"):
            errors.append(f"{at} `type` must be `boolean` or `integer`, got {_show(option_type)}.")
        if "default" not in option:
            errors.append(f"{at} has no `default`.")
        else:
            default = option["default"]
            is_bool = isinstance(default, bool)
            if (option_type == "boolean" and not is_bool) or (
                option_type == "integer" and (is_bool or not isinstance(default, int))
            ):
                errors.append(f"{at} `default` {_show(default)} is not a JSON {option_type}.")
        code = option.get("code")
        if option_type == "boolean" and isinstance(code, str):
            boolean_codes.add(code)
            if code not in allowed_codes:
                errors.append(
                    f"{at} boolean option code `{code}` is not a CRD card type (ValueSet cardType)."
                )
    errors += [
        f"{where} has no boolean configuration option for the `{card_type}` card type."
        for card_type in card_types
        if card_type not in boolean_codes
    ]
    return errors


def _prefetch_errors(prefetch: Any, where: str) -> list[str]:
    if not isinstance(prefetch, dict) or not prefetch:
        return [f"{where} has no `prefetch` templates."]
    errors = []
    for key, template in prefetch.items():
        if not isinstance(template, str) or _blank(template):
            errors.append(f"{where} prefetch `{key}` is not a non-empty string.")
            continue
        if template.count("{{") != template.count("}}"):
            errors.append(f"{where} prefetch `{key}` has unbalanced `{{{{ }}}}`: `{template}`.")
        for token in _PREFETCH_TOKEN.findall(template):
            token = token.strip()
            if not (token.startswith(("context.", "%", "today()")) or token in _USER_TOKENS):
                errors.append(f"{where} prefetch `{key}` has an unknown token `{{{{{token}}}}}`.")
    errors += [
        f"{where} prefetch has no `{key}` template."
        for key in ("patient", "coverage")
        if key not in prefetch
    ]
    return errors


# --------------------------------------------------------------------------------------------
# Service call and hook requests


def check_service_call(status: int, body: str | bytes) -> list[str]:
    """`crd_service_call_test` (per request): HTTP 200 and a JSON body."""
    return _ok_json(status, body, "Service")


_CONTEXT_REQUIRED: Final[Mapping[str, Mapping[str, str]]] = {
    "appointment-book": {"userId": "String", "patientId": "String", "appointments": "Hash"},
    "encounter-start": {"userId": "String", "patientId": "String", "encounterId": "String"},
    "encounter-discharge": {"userId": "String", "patientId": "String", "encounterId": "String"},
    "order-select": {
        "userId": "String",
        "patientId": "String",
        "selections": "Array",
        "draftOrders": "Hash",
    },
    "order-dispatch": {"patientId": "String", "order": "String", "performer": "String"},
    "order-sign": {"userId": "String", "patientId": "String", "draftOrders": "Hash"},
}
_CONTEXT_OPTIONAL: Final[Mapping[str, Mapping[str, str]]] = {
    "appointment-book": {"encounterId": "String"},
    "order-select": {"encounterId": "String"},
    "order-dispatch": {"task": "Hash"},
    "order-sign": {"encounterId": "String"},
}
_USER_TYPES: Final[Mapping[str, tuple[str, ...]]] = {
    "appointment-book": ("Patient", "RelatedPerson", "Practitioner", "PractitionerRole"),
    "encounter-start": ("Practitioner", "PractitionerRole"),
    "encounter-discharge": ("Practitioner", "PractitionerRole"),
    "order-select": ("Practitioner", "PractitionerRole"),
    "order-sign": ("Practitioner", "PractitionerRole"),
}


def check_hook_request(hook: str, request: Any, validate: Validator | None = None) -> list[str]:
    """`crd_service_request_required_fields_validation` + `crd_service_request_context_validation`.

    `validate` stands in for the kit's profile validation of the appointments / draft orders
    (against their CRD profiles) and of the order-dispatch `task` (base Task).
    """
    errors = check_hook_request_required_fields(hook, request)
    if isinstance(request, dict) and isinstance(request.get("context"), dict):
        errors += check_hook_request_context(hook, request["context"], validate)
    return errors


def check_hook_request_required_fields(hook: str, request: Any) -> list[str]:
    """`crd_service_request_required_fields_validation` for one request body."""
    if not isinstance(request, dict):
        return ["Hook request body is not a JSON object."]
    errors = []
    for field, kind in (("hook", "String"), ("hookInstance", "String"), ("context", "Hash")):
        if _blank(request.get(field)):
            errors.append(f"Hook request did not contain required field: `{field}`.")
        elif not _is_kind(request[field], kind):
            errors.append(f"Hook request field {field} is not of type {kind}.")
    if request.get("hook") != hook:
        errors.append(f"The `hook` field should be {hook}, but was {request.get('hook')}.")
    if not _blank(request.get("fhirAuthorization")) and _blank(request.get("fhirServer")):
        errors.append(
            "Missing `fhirServer` field: If `fhirAuthorization` is provided, this field is "
            "REQUIRED."
        )
    hook_instance = request.get("hookInstance")
    if not _blank(hook_instance) and not is_uuid(hook_instance):
        errors.append(
            f"`hookInstance` field must be a globally unique UUID, got {_show(hook_instance)}."
        )
    return errors


def check_hook_request_context(
    hook: str, context: JsonObject, validate: Validator | None = None
) -> list[str]:
    """`crd_service_request_context_validation` for one `context` object."""
    validate = validate or _no_validation
    if hook not in _CONTEXT_REQUIRED:
        return [f"Unknown hook `{hook}`."]
    where = f"{hook} request context"
    errors = []
    for field, kind in _CONTEXT_REQUIRED[hook].items():
        errors += _presence_and_type(context, field, kind, where)
    optional = _CONTEXT_OPTIONAL.get(hook, {})
    for field, kind in optional.items():
        if field in context:
            errors += _presence_and_type(context, field, kind, where, required=False)
    if "encounterId" in optional and not _blank(context.get("encounterId")):
        errors += _plain_id_errors(context, hook, ["encounterId"])
    for field, value in context.items():
        if field in optional and isinstance(value, dict):
            resource_type = _resource_type(value)
            if resource_type is None:
                errors.append(f"Field `{field}` is not a FHIR resource.")
            elif resource_type != "Task":
                errors.append(f"Field `{field}` must be a `Task`. Got `{resource_type}`.")
            else:
                errors += validate(value, None)
    if hook in _USER_TYPES:
        errors += _reference_errors(
            context.get("userId"), "userId", allowed_types=_USER_TYPES[hook]
        )
    if hook == "appointment-book":
        errors += _plain_id_errors(context, hook, ["patientId"])
        errors += _context_bundle_errors(context, "appointments", ("Appointment",), validate)
    elif hook in ("encounter-start", "encounter-discharge"):
        errors += _plain_id_errors(context, hook, ["patientId", "encounterId"])
    elif hook in ("order-select", "order-sign"):
        errors += _plain_id_errors(context, hook, ["patientId"])
        errors += _context_bundle_errors(context, "draftOrders", ORDER_TYPES, validate)
        selections = context.get("selections")
        if hook == "order-select" and isinstance(selections, list):
            refs = _bundle_refs(context.get("draftOrders"))
            for reference in selections:
                errors += _reference_errors(reference, "selections item", allowed_types=ORDER_TYPES)
                if not isinstance(reference, str) or reference not in refs:
                    errors.append(
                        "`selections` field must reference FHIR resources in `draftOrders`. "
                        f"{reference} is not in `draftOrders`."
                    )
    elif hook == "order-dispatch":
        errors += _plain_id_errors(context, hook, ["patientId"])
        errors += _reference_errors(context.get("order"), "order", allowed_types=ORDER_TYPES)
        errors += _reference_errors(context.get("performer"), "performer")
    return errors


def _bundle_resources(bundle: Any) -> list[JsonObject]:
    if not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
        return []
    return [
        entry["resource"]
        for entry in bundle["entry"]
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]


def _bundle_refs(bundle: Any) -> set[str]:
    return {_ref_of(resource) for resource in _bundle_resources(bundle)}


def _context_bundle_errors(
    context: JsonObject,
    field: str,
    expected_types: Sequence[str],
    validate: Validator,
) -> list[str]:
    """`parse_fhir_bundle_from_context` + `bundle_entries_check` (+ `status_check`)."""
    bundle = context.get(field)
    if not isinstance(bundle, dict):
        return []  # the presence / type check already reported it
    resource_type = _resource_type(bundle)
    if resource_type is None:
        return [f"`{field}` field is not a FHIR resource."]
    if resource_type != "Bundle":
        return [f"Wrong context resource type: Expected `Bundle`, got `{resource_type}`."]
    errors = []
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        return [f"`{field}` bundle `entry` is not an array."]
    for number, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            errors.append(f"`{field}` bundle entry {number} has no resource.")
        elif _blank(resource.get("id")):
            errors.append("Resource in the FHIR Bundle does not have an id.")
    targets = [r for r in _bundle_resources(bundle) if r.get("resourceType") in expected_types]
    if not targets:
        errors.append(
            f"`{field}` bundle must contain at least one of the expected resource types: "
            f"{', '.join(expected_types)}."
        )
        return errors
    if field == "appointments" and not all(r.get("status") == "proposed" for r in targets):
        errors.append(
            "All Appointment resources in `appointments` bundle must have a `proposed` status."
        )
    for resource in targets:
        errors += validate(resource, PROFILE_BY_TYPE.get(str(resource.get("resourceType"))))
    return errors


def check_hook_request_optional_fields(request: Any) -> list[str]:
    """`crd_service_request_optional_fields_validation` (optional in the kit).

    `fhirServer` String, `fhirAuthorization` Object, `prefetch` Object; nothing present but
    blank; `fhirAuthorization` has access_token, token_type "Bearer", integer expires_in,
    scope and subject, and no blank extra fields.
    """
    if not isinstance(request, dict):
        return ["Hook request body is not a JSON object."]
    errors = []
    optional = {"fhirServer": "String", "fhirAuthorization": "Hash", "prefetch": "Hash"}
    for field, kind in optional.items():
        value = request.get(field)
        if _blank(value) and field in request:
            errors.append(f"Hook request field `{field}` cannot be defined but blank.")
        if _truthy(value) and not _is_kind(value, kind):
            errors.append(f"Hook request field {field} is not of type {kind}.")
    defined = {"hook", "hookInstance", "context", *optional}
    errors += [
        f"Hook request field `{field}` cannot be defined but blank."
        for field, value in request.items()
        if field not in defined and _blank(value)
    ]
    authorization = request.get("fhirAuthorization")
    if isinstance(authorization, dict) and authorization:
        errors += _fhir_authorization_errors(authorization)
    return errors


def _fhir_authorization_errors(authorization: JsonObject) -> list[str]:
    required = {
        "access_token": "String",
        "token_type": "String",
        "expires_in": "Integer",
        "scope": "String",
        "subject": "String",
    }
    errors = []
    for field, kind in required.items():
        value = authorization.get(field)
        if _blank(value):
            errors.append(f"`fhirAuthorization` did not contain required field: `{field}`.")
        if not _is_kind(value, kind):
            errors.append(f"`fhirAuthorization` field {field} is not of type {kind}.")
    errors += [
        f"`fhirAuthorization` field `{field}` cannot be defined but blank."
        for field, value in authorization.items()
        if field not in required and _blank(value)
    ]
    if not errors and authorization.get("token_type") != "Bearer":
        errors.append("`fhirAuthorization` `token_type` field is not set to 'Bearer'.")
    return errors


# --------------------------------------------------------------------------------------------
# Responses: cards and system actions


def check_action(action: Any, where: str = "Action") -> list[str]:
    """The kit's `action_fields_validation` for one suggestion action or system action."""
    if not isinstance(action, dict):
        return [f"{where} is not an object: {_show(action)}."]
    errors = []
    for field in ("type", "description"):
        errors += _presence_and_type(action, field, "String", where)
    action_type = action.get("type")
    if not _truthy(action_type):
        return errors
    if action_type not in ("create", "update", "delete"):
        errors.append(
            f"{where} type value `{action_type}` is not allowed. "
            "Allowed values: create, update, delete."
        )
    elif action_type in ("create", "update"):
        if not _truthy(action.get("resource")):
            errors.append(
                f"{where}: `Action.resource` must be present for `{action_type}` actions."
            )
        elif _resource_type(action["resource"]) is None:
            errors.append(f"{where}: `Action.resource` must be a FHIR resource.")
    else:
        errors += _presence_and_type(action, "resourceId", "String", f"{where} (`delete`)")
        errors += _reference_errors(action.get("resourceId"), "Action.resourceId")
    return errors


def check_card(card: Any, where: str = "Card") -> list[str]:
    """The kit's `cards_check` for one card: summary, indicator, source (label, topic)."""
    if not isinstance(card, dict):
        return [f"{where} is not an object."]
    errors = []
    for field, kind in (("summary", "String"), ("indicator", "String"), ("source", "Hash")):
        errors += _presence_and_type(card, field, kind, where)
    summary = card.get("summary")
    if isinstance(summary, str) and len(summary) >= 140:
        errors.append(
            f"{where}: `summary` is over the 140-character limit ({len(summary)} characters)."
        )
    indicator = card.get("indicator")
    if isinstance(indicator, str) and indicator not in ("info", "warning", "critical"):
        errors.append(
            f"{where}: `indicator` is `{indicator}`. Allowed values are `info`, `warning`, "
            "`critical`."
        )
    source = card.get("source")
    if isinstance(source, dict):
        errors += _presence_and_type(source, "label", "String", f"{where} source")
        errors += _presence_and_type(source, "topic", "Hash", f"{where} source")
        topic = source.get("topic")
        if isinstance(topic, dict):
            for field in ("code", "system"):
                errors += _presence_and_type(topic, field, "String", f"{where} source topic")
    return errors


def check_card_optional_fields(card: JsonObject, where: str = "Card") -> list[str]:
    """The kit's `valid_card_with_optionals?`: types of uuid/detail/suggestions/overrideReasons/
    links, selectionBehavior, overrideReasons codings, links and suggestion actions."""
    errors = []
    optional = {
        "uuid": "String",
        "detail": "String",
        "suggestions": "Array",
        "overrideReasons": "Array",
        "links": "Array",
    }
    for field, kind in optional.items():
        if _truthy(card.get(field)):
            errors += _presence_and_type(card, field, kind, where, required=False)
    if not _blank(card.get("suggestions")):
        behavior = card.get("selectionBehavior")
        if not _truthy(behavior):
            errors.append(
                f"{where}: `Card.selectionBehavior` must be provided if suggestions are present."
            )
        elif behavior not in ("at-most-one", "any"):
            errors.append(
                f"{where}: `selectionBehavior` {behavior} not allowed. "
                "Allowed values: at-most-one and any."
            )
    reasons = card.get("overrideReasons")
    if isinstance(reasons, list):
        for number, reason in enumerate(reasons):
            at = f"{where} overrideReasons[{number}]"
            if not isinstance(reason, dict):
                errors.append(f"{at} is not an object.")
                continue
            for field in ("code", "system", "display"):
                errors += _presence_and_type(reason, field, "String", at)
    links = card.get("links")
    if isinstance(links, list):
        for number, link in enumerate(links):
            errors += _link_errors(link, f"{where} links[{number}]")
    suggestions = card.get("suggestions")
    if isinstance(suggestions, list):
        for number, suggestion in enumerate(suggestions):
            errors += _suggestion_errors(suggestion, f"{where} suggestions[{number}]")
    return errors


def _link_errors(link: Any, where: str) -> list[str]:
    if not isinstance(link, dict):
        return [f"{where} is not an object."]
    errors = []
    for field, kind in (("label", "String"), ("type", "String"), ("url", "URL")):
        errors += _presence_and_type(link, field, kind, where)
    link_type = link.get("type")
    if _truthy(link_type):
        if link_type not in ("absolute", "smart"):
            errors.append(f"{where}: `Link.type` must be `absolute` or `smart`. Got `{link_type}`.")
        elif link_type == "absolute" and not _blank(link.get("appContext")):
            errors.append(
                f"{where}: `appContext` field should only be valued if the link type is smart "
                "and is not valid for absolute links."
            )
    return errors


def _suggestion_errors(suggestion: Any, where: str) -> list[str]:
    if not isinstance(suggestion, dict):
        return [f"{where} is not an object."]
    errors = _presence_and_type(suggestion, "label", "String", where)
    actions = suggestion.get("actions")
    if not _truthy(actions):
        return errors
    if not isinstance(actions, list):
        return [*errors, f"{where}: Suggestion `actions` field is not of type Array."]
    if not actions:
        return [*errors, f"{where}: Suggestion `actions` field should not be an empty Array."]
    for number, action in enumerate(actions):
        errors += check_action(action, f"{where} actions[{number}]")
    return errors


def check_hook_response(
    hook: str,
    request: Any,
    response: Any,
    validate: Validator | None = None,
    *,
    optional_fields: bool = True,
) -> list[str]:
    """`crd_service_response_validation` (+ `crd_card_optional_fields_validation` on the cards
    whose required fields are valid, unless `optional_fields` is False).

    `cards` array; `systemActions` array, required for appointment-book, order-sign and
    order-dispatch; card and system-action fields. The kit's warning for a response with no
    cards and no systemActions is not an error and is not reported. `request` and `validate`
    are not used by these two kit tests; they are accepted so every response-side check has the
    same call shape (see `run_hook_group` for the response-type tests that use them).
    """
    del request, validate
    if not isinstance(response, dict):
        return ["Server response is not a JSON object."]
    errors = []
    cards = response.get("cards")
    if cards is None:
        errors.append("Server response did not have the `cards` field.")
    elif not isinstance(cards, list):
        errors.append("`cards` field of server response is not an array.")
    else:
        for number, card in enumerate(cards):
            card_errors = check_card(card, f"cards[{number}]")
            errors += card_errors
            if optional_fields and not card_errors and isinstance(card, dict):
                errors += check_card_optional_fields(card, f"cards[{number}]")
    actions = response.get("systemActions")
    if actions is None and hook in PRIMARY_HOOKS:
        errors.append(
            "Server response did not have the `systemActions` field, which must be present "
            f"for the `{hook}` hook."
        )
    elif actions is not None and not isinstance(actions, list):
        errors.append("`systemActions` of server response is not an array.")
    elif isinstance(actions, list):
        for number, action in enumerate(actions):
            errors += check_action(action, f"systemActions[{number}]")
    return errors


def check_hook_response_crd(response: Any) -> list[str]:
    """[greenlight] CRD card rules the kit does not test (IG §2.5 resp-1…10).

    Every suggestion has a `uuid`; `source.topic` is coded from the CRD card types
    (system `http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp`, 2.0.1 ValueSet cardType).
    """
    if not isinstance(response, dict) or not isinstance(response.get("cards"), list):
        return []
    errors = []
    allowed = card_type_codes()
    for number, card in enumerate(response["cards"]):
        if not isinstance(card, dict):
            continue
        where = f"[greenlight] cards[{number}]"
        source = card.get("source")
        topic = source.get("topic") if isinstance(source, dict) else None
        if isinstance(topic, dict) and (
            topic.get("system") != CRD_TEMP_SYSTEM
            or not isinstance(topic.get("code"), str)
            or topic.get("code") not in allowed
        ):
            errors.append(
                f"{where} source.topic {topic.get('system')}#{topic.get('code')} is not a "
                "CRD card type (ValueSet cardType)."
            )
        suggestions = card.get("suggestions")
        if isinstance(suggestions, list):
            for index, suggestion in enumerate(suggestions):
                if isinstance(suggestion, dict) and _blank(suggestion.get("uuid")):
                    errors.append(f"{where} suggestions[{index}] has no `uuid`.")
    return errors


# --------------------------------------------------------------------------------------------
# Classification (cards_identification.rb)


def _action_resource_type(action: JsonObject) -> str | None:
    """The kit's `action_resource_type_check` subject: resource type, or resourceId's type."""
    if action.get("type") in ("create", "update"):
        return _resource_type(action.get("resource"))
    resource_id = action.get("resourceId")
    return _split_reference(resource_id)[0] if isinstance(resource_id, str) else None


def _all(items: Any, predicate: Callable[[Any], bool]) -> bool:
    """Ruby `items&.all? { ... }`: false for nil, true for an empty array."""
    return isinstance(items, list) and all(predicate(item) for item in items)


def _one(items: Any, predicate: Callable[[Any], bool]) -> bool:
    """Ruby `items&.one? { ... }`: exactly one element matches."""
    return isinstance(items, list) and sum(1 for item in items if predicate(item)) == 1


def _dict_get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def is_additional_orders_card(card: JsonObject) -> bool:
    """Every suggestion's actions are all `create` of an additional-order resource type."""
    return _all(
        card.get("suggestions"),
        lambda suggestion: _all(
            _dict_get(suggestion, "actions"),
            lambda action: (
                isinstance(action, dict)
                and action.get("type") == "create"
                and _action_resource_type(action) in ADDITIONAL_ORDERS_TYPES
            ),
        ),
    )


def is_coverage_information_action(action: JsonObject) -> bool:
    """A system action whose `resource.extension` has ext-coverage-information."""
    extensions = _dict_get(action.get("resource"), "extension")
    return isinstance(extensions, list) and any(
        _dict_get(extension, "url") == COVERAGE_INFO_URL for extension in extensions
    )


def is_create_update_coverage_action(action: Any) -> bool:
    """A `create` or `update` action on a Coverage."""
    return (
        isinstance(action, dict)
        and action.get("type") in ("create", "update")
        and _action_resource_type(action) == "Coverage"
    )


def is_create_update_coverage_card(card: JsonObject) -> bool:
    """Exactly one suggestion, whose actions hold exactly one create/update Coverage action."""
    suggestions = card.get("suggestions")
    return (
        _one(suggestions, _truthy)
        and isinstance(suggestions, list)
        and _one(_dict_get(suggestions[0], "actions"), is_create_update_coverage_action)
    )


def is_external_reference_card(card: JsonObject) -> bool:
    """Every link is `absolute`."""
    return _all(card.get("links"), lambda link: _dict_get(link, "type") == "absolute")


def is_launch_smart_app_card(card: JsonObject) -> bool:
    """Every link is `smart`."""
    return _all(card.get("links"), lambda link: _dict_get(link, "type") == "smart")


def is_instructions_card(card: JsonObject) -> bool:
    """No links and no suggestions."""
    return _blank(card.get("links")) and _blank(card.get("suggestions"))


def is_form_completion_task(task: Any) -> bool:
    """Task.code has `complete-questionnaire` and an input `questionnaire` with a URL canonical."""
    codings = _dict_get(_dict_get(task, "code"), "coding")
    inputs = _dict_get(task, "input")
    return (
        isinstance(codings, list)
        and any(_dict_get(c, "code") == "complete-questionnaire" for c in codings)
        and isinstance(inputs, list)
        and any(
            _dict_get(_dict_get(i, "type"), "text") == "questionnaire"
            and valid_url(_dict_get(i, "valueCanonical"))
            for i in inputs
        )
    )


def is_form_completion_action(action: Any) -> bool:
    """A `create` of a form-completion Task."""
    return (
        isinstance(action, dict)
        and action.get("type") == "create"
        and _action_resource_type(action) == "Task"
        and is_form_completion_task(action.get("resource"))
    )


def is_form_completion_card(card: JsonObject) -> bool:
    """Every suggestion has exactly one form-completion Task action."""
    return _all(
        card.get("suggestions"),
        lambda suggestion: _one(_dict_get(suggestion, "actions"), is_form_completion_action),
    )


def is_propose_alternate_request_card(card: JsonObject) -> bool:
    """A suggestion with an `update`, or a `delete` and a `create`, of an order-like type."""

    def has(actions: Any, action_type: str) -> bool:
        return isinstance(actions, list) and any(
            isinstance(action, dict)
            and action.get("type") == action_type
            and _action_resource_type(action) in PROPOSE_ALTERNATE_TYPES
            for action in actions
        )

    suggestions = card.get("suggestions")
    return isinstance(suggestions, list) and any(
        has(_dict_get(s, "actions"), "update")
        or (has(_dict_get(s, "actions"), "delete") and has(_dict_get(s, "actions"), "create"))
        for s in suggestions
    )


def valid_cards(response: Any) -> list[JsonObject]:
    """Cards whose required fields are valid (the kit's `valid_cards` output)."""
    cards = _dict_get(response, "cards")
    if not isinstance(cards, list):
        return []
    return [card for card in cards if isinstance(card, dict) and not check_card(card)]


def valid_system_actions(response: Any) -> list[JsonObject]:
    """System actions that pass `action_fields_validation` (the kit's `valid_system_actions`)."""
    actions = _dict_get(response, "systemActions")
    if not isinstance(actions, list):
        return []
    return [a for a in actions if isinstance(a, dict) and not check_action(a)]


def classify_cards(response: Any, hook: str | None = None) -> dict[str, list[JsonObject]]:
    """Sort a response's cards and system actions the way the kit's per-hook tests find them.

    As in the kit's pipeline, only valid cards count (`instructions`: required fields valid;
    the link and suggestion types: optional fields valid too), and only valid system actions.
    A card may fall in several lists (each kit test filters on its own). With `hook`, coverage
    information actions are limited to that hook's target resource types.

    Keys: external_reference, launch_smart_app, instructions, coverage_information (system
    actions), propose_alternate_request, additional_orders, request_form_completion (cards),
    request_form_completion_actions, create_update_coverage (cards),
    create_update_coverage_actions.
    """
    cards = valid_cards(response)
    with_optionals = [card for card in cards if not check_card_optional_fields(card)]
    with_links = [card for card in with_optionals if _truthy(card.get("links"))]
    with_suggestions = [card for card in with_optionals if _truthy(card.get("suggestions"))]
    actions = valid_system_actions(response)
    targets = COVERAGE_INFO_TARGETS.get(hook, ()) if hook else None
    return {
        "external_reference": [c for c in with_links if is_external_reference_card(c)],
        "launch_smart_app": [c for c in with_links if is_launch_smart_app_card(c)],
        "instructions": [c for c in cards if is_instructions_card(c)],
        "coverage_information": [
            a
            for a in actions
            if is_coverage_information_action(a)
            and (targets is None or _resource_type(a.get("resource")) in targets)
        ],
        "propose_alternate_request": [
            c for c in with_suggestions if is_propose_alternate_request_card(c)
        ],
        "additional_orders": [c for c in with_suggestions if is_additional_orders_card(c)],
        "request_form_completion": [c for c in with_suggestions if is_form_completion_card(c)],
        "request_form_completion_actions": [a for a in actions if is_form_completion_action(a)],
        "create_update_coverage": [
            c for c in with_suggestions if is_create_update_coverage_card(c)
        ],
        "create_update_coverage_actions": [
            a for a in actions if is_create_update_coverage_action(a)
        ],
    }


# --------------------------------------------------------------------------------------------
# Coverage Information


#: Invariant keys `check_coverage_information_extension` can apply (all by default).
#: q1-q5 are CRD 2.0.1's, read by their published descriptions (which CRD 2.2 also encodes);
#: q3 is applied both ways (2.0.1: info-needed => conditional; 2.2: conditional =>
#: info-needed); q4 uses the 2.2 wording (2.0.1's FHIRPath compares with 'PA', never a code);
#: q6-q9 are CRD 2.2's. `crd-ci-q2/2.0.1-fhirpath` is the 2.0.1 FHIRPath as published
#: (`covered != not-covered implies pa-needed exists`), which the HL7 validator Inferno runs
#: evaluates even though it contradicts the invariant's own description.
COVERAGE_INFO_INVARIANTS: Final = frozenset(
    {
        "crd-ci-q1",
        "crd-ci-q2",
        "crd-ci-q2/2.0.1-fhirpath",
        "crd-ci-q3",
        "crd-ci-q4",
        "crd-ci-q5",
        "crd-ci-q6",
        "crd-ci-q7",
        "crd-ci-q8",
        "crd-ci-q9",
    }
)


#: What a CRD 2.0.1 validator executes (the literal q2) and what a CRD 2.2 reader expects (q2
#: as described: not-covered carries no pa-needed). The two contradict for not-covered answers,
#: so a server renders per requested version and is checked with the matching set.
CRD_201_INVARIANTS: Final = COVERAGE_INFO_INVARIANTS - {"crd-ci-q2"}
CRD_22_INVARIANTS: Final = COVERAGE_INFO_INVARIANTS - {"crd-ci-q2/2.0.1-fhirpath"}


def _value_keys(extension: JsonObject) -> list[str]:
    return [key for key in extension if key.startswith("value")]


def _value(extension: Any) -> Any:
    if not isinstance(extension, dict):
        return None
    keys = _value_keys(extension)
    return extension[keys[0]] if len(keys) == 1 else None


def _sub_extensions(extension: JsonObject, url: str) -> list[JsonObject]:
    subs = extension.get("extension")
    if not isinstance(subs, list):
        return []
    return [s for s in subs if isinstance(s, dict) and s.get("url") == url]


def _sub_values(extension: JsonObject, url: str) -> list[Any]:
    return [_value(s) for s in _sub_extensions(extension, url)]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _value_shape_errors(value: Any, value_type: str, item: ExtensionSlice, at: str) -> list[str]:
    errors = []
    if value_type in ("code", "string", "canonical", "date"):
        if not isinstance(value, str) or _blank(value):
            return [f"{at}: value{_upper_first(value_type)} must be a non-empty string."]
        if value_type == "code" and not _FHIR_CODE.match(value):
            errors.append(f"{at}: `{value}` is not a valid FHIR code.")
        if value_type == "date" and not _FHIR_DATE.match(value):
            errors.append(f"{at}: `{value}` is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD).")
        if value_type == "code" and item.required_value_set:
            codes = crd_codes(item.required_value_set)
            if value not in codes:
                errors.append(
                    f"{at}: code `{value}` is not in the required value set "
                    f"{item.required_value_set} (CRD 2.0.1: {', '.join(sorted(codes))})."
                )
    elif value_type == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{at}: valueBoolean must be a JSON boolean.")
    elif not isinstance(value, dict) or not value:
        errors.append(f"{at}: value{_upper_first(value_type)} must be a non-empty object.")
    return errors


def _slice_errors(parent: JsonObject, slices: Sequence[ExtensionSlice], where: str) -> list[str]:
    """Cardinality, ext-1 and value types of the sub-extensions of `parent`."""
    subs = parent.get("extension")
    if not isinstance(subs, list):
        return [f"{where}: `extension` must be an array of sub-extensions."]
    errors = []
    for number, sub in enumerate(subs):
        if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
            errors.append(f"{where} extension[{number}] has no `url`.")
    for item in slices:
        found = _sub_extensions(parent, item.url)
        if len(found) < item.min:
            errors.append(f"{where}: sub-extension `{item.url}` is required ({item.min}..).")
        if item.max is not None and len(found) > item.max:
            errors.append(
                f"{where}: sub-extension `{item.url}` appears {len(found)} times (max {item.max})."
            )
        for sub in found:
            at = f"{where} extension[{item.url}]"
            keys = _value_keys(sub)
            nested = sub.get("extension")
            if keys and nested:
                errors.append(f"{at}: must have either extensions or value[x], not both (ext-1).")
            if item.value_max == 0:
                if keys:
                    errors.append(f"{at}: must not have a value[x] (it is a complex extension).")
                if item.children:
                    errors += _slice_errors(sub, item.children, at)
                continue
            if nested:
                errors.append(f"{at}: must not have nested extensions.")
            if len(keys) > 1:
                errors.append(f"{at}: has more than one value[x]: {', '.join(keys)}.")
                continue
            if not keys:
                # ext-1: a sub-extension with no nested extensions needs a value, even where
                # the profile leaves value[x] 0..1.
                errors.append(f"{at}: has no value[x].")
                continue
            allowed = {"value" + _upper_first(t): t for t in item.value_types}
            if keys[0] not in allowed:
                errors.append(
                    f"{at}: `{keys[0]}` is not allowed; expected {' or '.join(sorted(allowed))}."
                )
                continue
            errors += _value_shape_errors(sub[keys[0]], allowed[keys[0]], item, at)
    return errors


def check_coverage_information_extension(
    extension: Any,
    *,
    invariants: Collection[str] = COVERAGE_INFO_INVARIANTS,
    where: str = "ext-coverage-information",
) -> list[str]:
    """One ext-coverage-information instance against the CRD 2.0.1 definition (read from the
    package: sub-extension cardinalities, value types, required code bindings) and the
    invariants in `invariants` (see COVERAGE_INFO_INVARIANTS). Unknown sub-extensions are
    allowed (the slicing is open); `detail` is checked only for its own sub-extensions.
    """
    if not isinstance(extension, dict):
        return [f"{where} is not an object."]
    errors = []
    if extension.get("url") != COVERAGE_INFO_URL:
        errors.append(f"{where}: url must be {COVERAGE_INFO_URL}.")
    if _value_keys(extension):
        errors.append(f"{where}: must not have a value[x].")
    errors += _slice_errors(extension, coverage_information_slices(), where)
    for reference in _sub_values(extension, "coverage"):
        if isinstance(reference, dict):
            target = reference.get("reference")
            if isinstance(target, str):
                if not _COVERAGE_REF.search(target):
                    errors.append(
                        f"{where} extension[coverage]: `{target}` is not a reference to a Coverage."
                    )
            elif reference.get("type") != "Coverage":
                errors.append(
                    f"{where} extension[coverage]: the Reference has neither a `reference` nor "
                    "`type: Coverage`."
                )
    return errors + _invariant_errors(extension, invariants, where)


def _reason_in_value_set(reason: Any) -> bool:
    codings = _dict_get(reason, "coding")
    if not isinstance(codings, list):
        return False
    allowed = crd_value_set("http://hl7.org/fhir/us/davinci-crd/ValueSet/coverageAssertionReasons")
    return any(
        isinstance(_dict_get(c, "system"), str)
        and isinstance(_dict_get(c, "code"), str)
        and (c["system"], c["code"]) in allowed
        for c in codings
    )


def _invariant_errors(extension: JsonObject, keys: Collection[str], where: str) -> list[str]:
    covered = _sub_values(extension, "covered")
    pa_needed = _sub_values(extension, "pa-needed")
    doc_needed = _sub_values(extension, "doc-needed")
    purposes = _sub_values(extension, "doc-purpose")
    info_needed = _sub_values(extension, "info-needed")
    reasons = _sub_values(extension, "reason")
    decisions = covered + pa_needed + doc_needed
    has = {
        name: bool(_sub_extensions(extension, name))
        for name in ("questionnaire", "response", "satisfied-pa-id")
    }
    failed: list[tuple[str, str]] = []
    if (has["questionnaire"] or has["response"]) and (not doc_needed or "no-doc" in doc_needed):
        failed.append(("crd-ci-q1", "`questionnaire` (or `response`) requires `doc-needed`."))
    if "not-covered" in covered and pa_needed:
        failed.append(("crd-ci-q2", "covered is `not-covered`, so `pa-needed` must not exist."))
    if not pa_needed:
        # `X implies Y` with Y empty is empty when X is true *or empty* (FHIRPath three-valued
        # logic), and the HL7 validator counts an empty invariant result as a failure
        # (FHIRPathEngine.convertToBoolean): so pa-needed is required whatever `covered` says.
        failed.append(
            (
                "crd-ci-q2/2.0.1-fhirpath",
                f"covered is `{covered[0] if covered else '(none)'}` and there is no "
                "`pa-needed`: the CRD 2.0.1 FHIRPath (`extension.where(url = 'covered' and "
                "value != 'not-covered') implies extension.where(url = 'pa-needed').exists()`), "
                "as the HL7 validator evaluates it, requires `pa-needed`.",
            )
        )
    if "conditional" in decisions and not info_needed:
        failed.append(("crd-ci-q3", "a `conditional` value requires `info-needed`."))
    if info_needed and "conditional" not in decisions:
        failed.append(
            (
                "crd-ci-q3",
                "`info-needed` requires `covered`, `pa-needed` or `doc-needed` to be "
                "`conditional`.",
            )
        )
    no_pa = any(p in ("satisfied", "no-auth") for p in pa_needed) or "not-covered" in covered
    if "withpa" in purposes and no_pa:
        failed.append(
            (
                "crd-ci-q4",
                "doc-purpose `withpa` is not allowed when prior authorization is satisfied, "
                "not needed, or the service is not covered.",
            )
        )
    if ("satisfied" in pa_needed) != has["satisfied-pa-id"]:
        failed.append(
            ("crd-ci-q5", "`satisfied-pa-id` must exist if and only if pa-needed is `satisfied`.")
        )
    if "OTH" in info_needed and not reasons:
        failed.append(("crd-ci-q6", "info-needed `OTH` requires a `reason`."))
    for reason in reasons:
        if not _blank(_dict_get(reason, "text")) or _reason_in_value_set(reason):
            continue
        failed.append(
            (
                "crd-ci-q7",
                f"reason {_show(reason)} has no code from coverageAssertionReasons, so it needs "
                "`text`.",
            )
        )
    if any(p != "conditional" for p in purposes) and not reasons:
        failed.append(("crd-ci-q8", "`doc-purpose` requires a `reason`."))
    if "indeterminate" in decisions and not reasons:
        failed.append(("crd-ci-q9", "an `indeterminate` value requires a `reason`."))
    return [f"{key}: {where}: {message}" for key, message in failed if key in keys]


def _request_resource_refs(hook: str, request: Any) -> set[str]:
    """`Type/id` of every resource the request context names for coverage information."""
    context = _dict_get(request, "context")
    if not isinstance(context, dict):
        return set()
    refs = _bundle_refs(context.get("draftOrders")) | _bundle_refs(context.get("appointments"))
    if isinstance(context.get("order"), str):
        refs.add(context["order"])
    if hook.startswith("encounter-") and isinstance(context.get("encounterId"), str):
        refs.add(f"Encounter/{context['encounterId']}")
    return refs


def check_coverage_information(
    hook: str,
    request: Any,
    actions: Sequence[Any],
    validate: Validator | None = None,
    *,
    invariants: Collection[str] = COVERAGE_INFO_INVARIANTS,
) -> list[str]:
    """`crd_coverage_info_system_action_received` + `crd_coverage_info_system_action_validation`,
    plus the ext-coverage-information definition and invariants (CRD 2.0.1 / 2.2).

    `actions` are the Coverage Information system actions (e.g. `classify_cards(response,
    hook)["coverage_information"]`). None is an error for the primary hooks (appointment-book,
    order-sign, order-dispatch) and no error otherwise. Each action: `type` is `update`; the
    resource is of a type the hook updates and validates against its CRD profile; it carries
    ext-coverage-information; per coverage reference one distinct `coverage-assertion-id` and
    at most one `satisfied-pa-id`, distinct across coverages. [greenlight] With a `request`,
    the resource must be one the request names (draftOrders, appointments, order, encounter).
    """
    validate = validate or _no_validation
    if not actions:
        if hook in PRIMARY_HOOKS:
            return [
                f"Coverage Information system action was not returned in the {hook} hook response."
            ]
        return []
    errors = []
    known = _request_resource_refs(hook, request) if isinstance(request, dict) else None
    for number, action in enumerate(actions):
        at = f"coverage information action[{number}]"
        if not isinstance(action, dict):
            errors.append(f"{at} is not an object.")
            continue
        if not _truthy(action.get("type")):
            errors.append(f"{at}: `type` field is missing.")
        elif action["type"] != "update":
            errors.append(f"{at}: `type` must be `update`, but was `{action['type']}`.")
        resource = action.get("resource")
        resource_type = _resource_type(resource)
        if resource_type is None or not isinstance(resource, dict):
            errors.append(f"{at}: `resource` is not a FHIR resource.")
            continue
        ref = _ref_of(resource)
        at = f"{at} {ref}"
        if resource_type not in COVERAGE_INFO_TARGETS.get(hook, ()):
            errors.append(
                f"{at}: a {hook} Coverage Information action updates "
                f"{' or '.join(COVERAGE_INFO_TARGETS.get(hook, ()))}, not {resource_type}."
            )
        if known is not None and ref not in known:
            errors.append(f"[greenlight] {at}: the updated resource is not one the request names.")
        errors += validate(resource, PROFILE_BY_TYPE.get(resource_type))
        raw = resource.get("extension")
        extensions = (
            [e for e in raw if _dict_get(e, "url") == COVERAGE_INFO_URL]
            if isinstance(raw, list)
            else []
        )
        if not extensions:
            errors.append(f"{at}: the resource has no ext-coverage-information extension.")
            continue
        errors += _assertion_id_errors(extensions, ref)
        for index, extension in enumerate(extensions):
            errors += check_coverage_information_extension(
                extension,
                invariants=invariants,
                where=f"{at} ext-coverage-information[{index}]",
            )
    return errors


def _assertion_id_errors(extensions: Sequence[JsonObject], ref: str) -> list[str]:
    """The kit's `multiple_extensions_conformance_check` (reported, not stopping at the first)."""
    groups: dict[str | None, list[JsonObject]] = {}
    for extension in extensions:
        reference = _dict_get(_first_value_raw(extension, "coverage"), "reference")
        coverage = (
            reference if isinstance(reference, str) or reference is None else _show(reference)
        )
        groups.setdefault(coverage, []).append(extension)
    errors = []
    assertion_ids_seen: set[str | None] = set()
    pa_ids_seen: set[str] = set()
    for coverage, members in groups.items():
        assertion_ids = list(
            dict.fromkeys(_first_value(e, "coverage-assertion-id") for e in members)
        )
        pa_ids = [
            i
            for i in dict.fromkeys(_first_value(e, "satisfied-pa-id") for e in members)
            if i is not None
        ]
        if len(assertion_ids) != 1:
            errors.append(
                f"{ref}: extension has multiple repetitions of coverage `{coverage}` with "
                "different coverage-assertion-ids."
            )
        if len(pa_ids) > 1:
            errors.append(
                f"{ref}: extension has multiple repetitions of coverage `{coverage}` with "
                "different satisfied-pa-ids."
            )
        assertion_id = assertion_ids[0]
        if assertion_id in assertion_ids_seen:
            errors.append(
                f"{ref}: extensions referencing differing coverage SHALL have distinct "
                "coverage-assertion-ids."
            )
        assertion_ids_seen.add(assertion_id)
        if pa_ids:
            if pa_ids[0] in pa_ids_seen:
                errors.append(
                    f"{ref}: extensions referencing differing coverage SHALL have distinct "
                    "satisfied-pa-ids."
                )
            pa_ids_seen.add(pa_ids[0])
    return errors


def _first_value_raw(extension: JsonObject, url: str) -> Any:
    values = _sub_values(extension, url)
    return values[0] if values else None


def _first_value(extension: JsonObject, url: str) -> str | None:
    """The first value of a sub-extension, as a hashable key (non-strings as JSON)."""
    values = _sub_values(extension, url)
    if not values or values[0] is None:
        return None
    return values[0] if isinstance(values[0], str) else _show(values[0], 10_000)


# --------------------------------------------------------------------------------------------
# Other response types


def _as_requests(requests: Any) -> list[JsonObject]:
    if isinstance(requests, dict):
        return [requests]
    if isinstance(requests, list | tuple):
        return [r for r in requests if isinstance(r, dict)]
    return []


def _actions_errors(
    actions: Any,
    validate: Validator,
    requests: Sequence[JsonObject] | None,
    where: str,
) -> list[str]:
    """The kit's `actions_check`: profile-validate created/updated resources; with requests,
    updates target a draft order and deletes a draft order replaced by a create of its type."""
    if not isinstance(actions, list):
        return []
    draft_refs: set[str] = set()
    for request in requests or ():
        draft_refs |= _bundle_refs(_dict_get(_dict_get(request, "context"), "draftOrders"))
    created = {
        _dict_get(a.get("resource"), "resourceType")
        for a in actions
        if isinstance(a, dict) and a.get("type") == "create"
    }
    errors = []
    for number, action in enumerate(actions):
        at = f"{where} actions[{number}]"
        if not isinstance(action, dict):
            continue
        if action.get("type") in ("create", "update"):
            resource = action.get("resource")
            resource_type = _resource_type(resource)
            if resource_type is None or not isinstance(resource, dict):
                errors.append(f"{at}: `resource` is not a FHIR resource.")
                continue
            errors += validate(resource, PROFILE_BY_TYPE.get(resource_type))
            ref = _ref_of(resource)
            if action["type"] == "update" and requests is not None and ref not in draft_refs:
                errors.append(
                    f"{at}: Resource being updated must be from the `draftOrders` entry. {ref} is "
                    "not in the `context.draftOrders` of the submitted requests."
                )
        elif action.get("type") == "delete" and requests is not None:
            deleted = action.get("resourceId")
            if not isinstance(deleted, str) or deleted not in draft_refs:
                errors.append(
                    f"{at}: `Action.resourceId` must reference FHIR resource from the "
                    f"`draftOrders` entry. {deleted} is not in `draftOrders`."
                )
            elif _split_reference(str(deleted))[0] not in created:
                errors.append(
                    f"{at}: There's no `create` action for the proposed order being deleted: "
                    f"`{deleted}`."
                )
    return errors


def check_propose_alternate_request(
    requests: Any, cards: Sequence[JsonObject], validate: Validator | None = None
) -> list[str]:
    """`crd_propose_alternate_request_card_validation` on the Propose Alternate Request cards.

    `requests` is the request body (or the list of bodies) whose `context.draftOrders` the
    updates and deletes must target.
    """
    validate = validate or _no_validation
    contexts = _as_requests(requests)
    errors = []
    for number, card in enumerate(cards):
        for index, suggestion in enumerate(card.get("suggestions") or []):
            errors += _actions_errors(
                _dict_get(suggestion, "actions"),
                validate,
                contexts,
                f"propose alternate card[{number}] suggestions[{index}]",
            )
    return errors


def check_additional_orders(
    cards: Sequence[JsonObject], validate: Validator | None = None
) -> list[str]:
    """`crd_additional_orders_card_validation`: each created resource validates against its
    CRD profile; [greenlight] and every action is a `create` of an additional-order type."""
    validate = validate or _no_validation
    errors = []
    for number, card in enumerate(cards):
        for index, suggestion in enumerate(card.get("suggestions") or []):
            where = f"additional orders card[{number}] suggestions[{index}]"
            actions = _dict_get(suggestion, "actions")
            if not isinstance(actions, list) or not actions:
                errors.append(f"[greenlight] {where} has no actions.")
                continue
            for position, action in enumerate(actions):
                if not (
                    isinstance(action, dict)
                    and action.get("type") == "create"
                    and _action_resource_type(action) in ADDITIONAL_ORDERS_TYPES
                ):
                    errors.append(
                        f"[greenlight] {where} actions[{position}] is not a `create` of "
                        f"{', '.join(ADDITIONAL_ORDERS_TYPES)}."
                    )
            errors += _actions_errors(actions, validate, None, where)
    return errors


def _task_errors(task: Any, where: str) -> list[str]:
    if not isinstance(task, dict) or task.get("resourceType") != "Task":
        return [f"{where}: the resource is not a Task."]
    errors = []
    codings = _dict_get(task.get("code"), "coding")
    if not (
        isinstance(codings, list)
        and any(_dict_get(c, "code") == "complete-questionnaire" for c in codings)
    ):
        errors.append(f"{where}: Task.code.coding does not include `complete-questionnaire`.")
    inputs = task.get("input")
    questionnaire_inputs = [
        i
        for i in (inputs if isinstance(inputs, list) else [])
        if _dict_get(_dict_get(i, "type"), "text") == "questionnaire"
    ]
    if not questionnaire_inputs:
        errors.append(f"{where}: Task has no input with `type.text` = `questionnaire`.")
    elif not any(valid_url(_dict_get(i, "valueCanonical")) for i in questionnaire_inputs):
        errors.append(
            f"{where}: the `questionnaire` input's `valueCanonical` is not a valid http(s) URL."
        )
    return errors


def check_form_completion(
    cards: Sequence[JsonObject],
    actions: Sequence[JsonObject] = (),
    validate: Validator | None = None,
) -> list[str]:
    """`crd_request_form_completion_response_validation`.

    Every `create` of a Task in the cards' suggestions and in `actions` (system actions) must
    be a form-completion Task: `code` complete-questionnaire, an input with `type.text`
    "questionnaire" and a URL `valueCanonical`; and validate against profile-taskquestionnaire.
    (The kit uses the first three to recognise such a Task, then validates it.)
    """
    validate = validate or _no_validation
    found: list[tuple[str, JsonObject]] = []
    for number, card in enumerate(cards):
        for index, suggestion in enumerate(card.get("suggestions") or []):
            for position, action in enumerate(_dict_get(suggestion, "actions") or []):
                if isinstance(action, dict):
                    at = f"form completion card[{number}] suggestions[{index}] actions[{position}]"
                    found.append((at, action))
    found += [(f"form completion systemActions[{n}]", a) for n, a in enumerate(actions)]
    errors = []
    tasks = 0
    for at, action in found:
        if action.get("type") != "create" or _action_resource_type(action) != "Task":
            continue
        tasks += 1
        task = action["resource"]
        errors += _task_errors(task, at)
        errors += validate(task, PROFILE_BY_TYPE["Task"])
    if found and not tasks:
        errors.append("No `create` Task action found in the Request Form Completion response.")
    return errors


def check_create_update_coverage(
    cards: Sequence[JsonObject],
    actions: Sequence[JsonObject] = (),
    validate: Validator | None = None,
) -> list[str]:
    """`crd_create_or_update_coverage_info_response_validation`: each Coverage of a recognised
    card (one suggestion, one create/update Coverage action) or system action validates against
    profile-coverage; [greenlight] an `update` names the Coverage's `id`."""
    validate = validate or _no_validation
    found: list[tuple[str, JsonObject]] = []
    for number, card in enumerate(cards):
        suggestions = card.get("suggestions") or []
        if not suggestions:
            continue
        first = suggestions[0]
        for position, action in enumerate(_dict_get(first, "actions") or []):
            if is_create_update_coverage_action(action):
                found.append((f"coverage card[{number}] actions[{position}]", action))
    found += [
        (f"coverage systemActions[{n}]", a)
        for n, a in enumerate(actions)
        if is_create_update_coverage_action(a)
    ]
    errors = []
    for at, action in found:
        resource = action["resource"]
        errors += validate(resource, PROFILE_BY_TYPE["Coverage"])
        if action.get("type") == "update" and _blank(resource.get("id")):
            errors.append(f"[greenlight] {at}: an `update` of a Coverage needs its `id`.")
    return errors


# --------------------------------------------------------------------------------------------
# A hook group and group 3.7


def run_hook_group(
    hook: str,
    exchanges: Sequence[tuple[Any, Any]],
    validate: Validator | None = None,
) -> dict[str, list[str] | None]:
    """Every kit test of one hook group (3.1-3.6) over `(request, response)` pairs.

    Returns errors per kit test id; None where the kit would skip (no such card). Tests that
    are not run for the hook (propose alternate and additional orders outside order-select and
    order-sign) are absent. The service-call test (HTTP status, JSON) is the caller's.
    """
    requests = [request for request, _response in exchanges]
    required: list[str] = []
    context_errors: list[str] = []
    optional: list[str] = []
    for number, request in enumerate(requests):
        prefix = f"Request {number + 1}: "
        required += [prefix + e for e in check_hook_request_required_fields(hook, request)]
        context = _dict_get(request, "context")
        if isinstance(context, dict):
            context_errors += [
                prefix + e for e in check_hook_request_context(hook, context, validate)
            ]
        optional += [prefix + e for e in check_hook_request_optional_fields(request)]
    response_errors: list[str] = []
    card_errors: list[str] = []
    sorted_: dict[str, list[JsonObject]] = {key: [] for key in classify_cards({})}
    for number, (request, response) in enumerate(exchanges):
        prefix = f"Server response {number + 1}: "
        response_errors += [
            prefix + e for e in check_hook_response(hook, request, response, optional_fields=False)
        ]
        for card_number, card in enumerate(valid_cards(response)):
            where = f"valid card[{card_number}]"
            card_errors += [prefix + e for e in check_card_optional_fields(card, where)]
        for key, items in classify_cards(response, hook).items():
            sorted_[key].extend(items)
    results: dict[str, list[str] | None] = {
        T_REQUIRED_FIELDS: required,
        T_CONTEXT: context_errors,
        T_OPTIONAL_FIELDS: optional,
        T_RESPONSE: response_errors,
        T_CARD_OPTIONALS: card_errors,
    }
    results[T_EXTERNAL_REFERENCE] = (
        []
        if sorted_["external_reference"]
        else [f"{hook} hook response did not contain an External Reference card."]
    )
    results[T_LAUNCH_SMART] = [] if sorted_["launch_smart_app"] else None
    results[T_INSTRUCTIONS] = (
        []
        if sorted_["instructions"]
        else [f"{hook} hook response did not contain an Instructions card."]
    )
    coverage = sorted_["coverage_information"]
    results[T_COVERAGE_RECEIVED] = (
        []
        if coverage
        else [f"Coverage Information system action was not returned in the {hook} hook response."]
    )
    results[T_COVERAGE_VALID] = (
        check_coverage_information(hook, None, coverage, validate) if coverage else None
    )
    if hook in ("order-select", "order-sign"):
        cards = sorted_["propose_alternate_request"]
        results[T_PROPOSE_ALTERNATE] = (
            check_propose_alternate_request(requests, cards, validate) if cards else None
        )
        cards = sorted_["additional_orders"]
        results[T_ADDITIONAL_ORDERS] = check_additional_orders(cards, validate) if cards else None
    cards, actions = sorted_["request_form_completion"], sorted_["request_form_completion_actions"]
    results[T_FORM_COMPLETION] = (
        check_form_completion(cards, actions, validate) if cards or actions else None
    )
    cards, actions = sorted_["create_update_coverage"], sorted_["create_update_coverage_actions"]
    results[T_CREATE_UPDATE_COVERAGE] = (
        check_create_update_coverage(cards, actions, validate) if cards or actions else None
    )
    return results


def check_across_hooks(results: Iterable[HookResults]) -> list[str]:
    """Group 3.7 (`crd_server_required_card_response_validation`): across the hook groups run,
    the External Reference, Instructions and Coverage Information validation tests each passed
    at least once (`results` are `run_hook_group` outputs)."""
    wanted = {
        T_EXTERNAL_REFERENCE: "None of the hooks invoked returned an External Reference card.",
        T_INSTRUCTIONS: "None of the hooks invoked returned a valid Instructions card.",
        T_COVERAGE_VALID: "None of the hooks invoked returned valid Coverage Info system actions.",
    }
    passed = {test: False for test in wanted}
    for result in results:
        for test in wanted:
            if result.get(test) == []:
                passed[test] = True
    return [message for test, message in wanted.items() if not passed[test]]
