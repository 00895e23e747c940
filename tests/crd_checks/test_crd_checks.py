"""Proves tests/support/crd_checks.py with the Inferno CRD kit's own fixtures.

The kit's positive examples (hook requests, hook response, coverage-information system actions,
valid cards, card templates, discovery document) must pass, and mutated copies must fail with the
expected message. Where a kit fixture fails a check, the test says so and why; the check is not
weakened. Fixtures are read from ../shared at test time, never copied into the project.
"""

from __future__ import annotations

import copy
import json
import tarfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FHIR_PACKAGES, INFERNO_FIXTURES
from tests.support import crd_checks as crd

KIT = INFERNO_FIXTURES / "davinci-crd-test-kit"
CI = crd.COVERAGE_INFO_URL

Json = dict[str, Any]


@lru_cache(maxsize=64)
def _raw(relative: str) -> str:
    return (KIT / relative).read_text(encoding="utf-8")


def load(relative: str) -> Any:
    """A fresh copy of a kit fixture (safe to mutate)."""
    return json.loads(_raw(relative))


def errors_with(errors: list[str], fragment: str) -> list[str]:
    return [error for error in errors if fragment in error]


def assert_fails_with(errors: list[str], fragment: str) -> None:
    assert errors_with(errors, fragment), f"expected an error containing {fragment!r}: {errors}"


class Recorder:
    """A `validate` callback that records its calls and returns canned errors."""

    def __init__(self, errors: list[str] | None = None) -> None:
        self.calls: list[tuple[str | None, str | None]] = []
        self.errors = errors or []

    def __call__(self, resource: crd.JsonObject, profile: str | None) -> list[str]:
        self.calls.append((resource.get("resourceType"), profile))
        return list(self.errors)


# ---------------------------------------------------------------------------------------------
# Request fixtures

REQUEST_FILES = [
    "extracted/any_hook_request_body.json",
    "extracted/appointment_book_request_bodies.json",
    "extracted/encounter_start_request_bodies.json",
    "extracted/encounter_discharge_request_bodies.json",
    "extracted/order_select_request_bodies.json",
    "extracted/order_dispatch_request_bodies.inferno_client_preset.json",
    "extracted/order_sign_request_bodies.json",
    "spec/fixtures/appointment_book_hook_request.json",
    "spec/fixtures/encounter_start_hook_request.json",
    "spec/fixtures/encounter_discharge_hook_request.json",
    "spec/fixtures/order_select_hook_request.json",
    "spec/fixtures/order_sign_hook_request.json",
    "spec/fixtures/order_dispatch_hook_request.json",
]


def request_bodies() -> list[tuple[str, Json]]:
    found = []
    for relative in REQUEST_FILES:
        data = load(relative)
        for number, body in enumerate(data if isinstance(data, list) else [data]):
            found.append((f"{relative}#{number}", body))
    return found


def request(relative: str, number: int = 0) -> Json:
    data = load(relative)
    body: Json = data[number] if isinstance(data, list) else data
    return body


def order_sign_request() -> Json:
    """The order-sign body whose draft order is DeviceRequest/devreq-015-e0250."""
    return request("extracted/order_sign_request_bodies.json", 0)


@pytest.mark.parametrize(("name", "body"), request_bodies(), ids=lambda v: str(v)[:60])
def test_kit_request_bodies_pass(name: str, body: Json) -> None:
    assert crd.check_hook_request(body["hook"], body) == [], name
    assert crd.check_hook_request_optional_fields(body) == [], name


def test_kit_order_dispatch_body_with_non_uuid_hook_instance_fails() -> None:
    # Kit fixture failing a kit check: the ri_crd_server preset's first order-dispatch body
    # has hookInstance `...3e05e123b2va` ("v" is not hex), which the kit's own `guid?` rejects.
    first, second = load("extracted/order_dispatch_request_bodies.json")
    errors = crd.check_hook_request("order-dispatch", first)
    assert errors == [
        '`hookInstance` field must be a globally unique UUID, got "f3945c39-dfbe-444f-ba6d-'
        '3e05e123b2va".'
    ]
    assert crd.check_hook_request("order-dispatch", second) == []


def test_request_validate_callback_gets_crd_profiles() -> None:
    recorder = Recorder(["profile says no"])
    body = request("spec/fixtures/appointment_book_hook_request.json")
    errors = crd.check_hook_request("appointment-book", body, recorder)
    assert recorder.calls == [("Appointment", crd.PROFILE_BY_TYPE["Appointment"])] * 2
    assert errors == ["profile says no", "profile says no"]
    recorder = Recorder()
    crd.check_hook_request(
        "order-dispatch", request("spec/fixtures/order_dispatch_hook_request.json"), recorder
    )
    assert recorder.calls == [("Task", None)]
    recorder = Recorder()
    crd.check_hook_request(
        "order-select", request("spec/fixtures/order_select_hook_request.json"), recorder
    )
    assert recorder.calls == [
        ("NutritionOrder", crd.PROFILE_BY_TYPE["NutritionOrder"]),
        ("MedicationRequest", crd.PROFILE_BY_TYPE["MedicationRequest"]),
    ]


Mutation = Callable[[Json], None]


def _parts(path: str | tuple[str, ...]) -> list[str]:
    """A dotted path, or a tuple of keys when a key has a dot in it."""
    return list(path) if isinstance(path, tuple) else path.split(".")


def _set(path: str | tuple[str, ...], value: Any) -> Mutation:
    def apply(body: Json) -> None:
        *parents, last = _parts(path)
        node: Any = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(path: str | tuple[str, ...]) -> Mutation:
    def apply(body: Json) -> None:
        *parents, last = _parts(path)
        node: Any = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return apply


REQUEST_MUTATIONS: list[tuple[str, str, Mutation, str]] = [
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-select",
        lambda b: None,
        "The `hook` field should be order-select, but was order-sign",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _delete("context"),
        "did not contain required field: `context`",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context", "nope"),
        "Hook request field context is not of type Hash",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _delete("fhirServer"),
        "Missing `fhirServer` field",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _delete("hookInstance"),
        "did not contain required field: `hookInstance`",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _delete("context.userId"),
        "does not contain required field `userId`",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.userId", "Patient/example"),
        "`userId` type should be one of Practitioner, PractitionerRole, but received Patient",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.userId", "Practitioner"),
        "Invalid `userId` format",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.patientId", "Patient/example"),
        "`patientId` in order-sign context should be a plain ID",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.encounterId", 12),
        "field `encounterId` is not of type `String`",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.draftOrders.resourceType", "Parameters"),
        "Expected `Bundle`, got `Parameters`",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.draftOrders.resourceType", "NotAResource"),
        "`draftOrders` field is not a FHIR resource",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _delete("context.draftOrders.entry.0.resource.id"),
        "Resource in the FHIR Bundle does not have an id",
    ),
    (
        "spec/fixtures/order_sign_hook_request.json",
        "order-sign",
        _set("context.draftOrders.entry", [{"resource": {"resourceType": "Patient", "id": "p"}}]),
        "`draftOrders` bundle must contain at least one of the expected resource types",
    ),
    (
        "spec/fixtures/order_select_hook_request.json",
        "order-select",
        _set("context.selections", ["MedicationRequest/not-drafted"]),
        "MedicationRequest/not-drafted is not in `draftOrders`",
    ),
    (
        "spec/fixtures/order_select_hook_request.json",
        "order-select",
        _set("context.selections", ["Patient/example"]),
        "`selections item` type should be one of DeviceRequest",
    ),
    (
        "spec/fixtures/appointment_book_hook_request.json",
        "appointment-book",
        _set("context.appointments.entry.0.resource.status", "booked"),
        "must have a `proposed` status",
    ),
    (
        "spec/fixtures/appointment_book_hook_request.json",
        "appointment-book",
        _set("context.userId", "Device/x"),
        "Patient, RelatedPerson, Practitioner, PractitionerRole, but received Device",
    ),
    (
        "spec/fixtures/appointment_book_hook_request.json",
        "appointment-book",
        _set("context.appointments", []),
        "field `appointments` is not of type `Hash`",
    ),
    (
        "spec/fixtures/encounter_start_hook_request.json",
        "encounter-start",
        _set("context.encounterId", "Encounter/example"),
        "`encounterId` in encounter-start context should be a plain ID",
    ),
    (
        "spec/fixtures/encounter_discharge_hook_request.json",
        "encounter-discharge",
        _delete("context.encounterId"),
        "does not contain required field `encounterId`",
    ),
    (
        "spec/fixtures/order_dispatch_hook_request.json",
        "order-dispatch",
        _set("context.order", "Patient/example"),
        "`order` type should be one of DeviceRequest",
    ),
    (
        "spec/fixtures/order_dispatch_hook_request.json",
        "order-dispatch",
        _set("context.performer", "example"),
        "Invalid `performer` format",
    ),
    (
        "spec/fixtures/order_dispatch_hook_request.json",
        "order-dispatch",
        _set("context.task", {"resourceType": "Patient", "id": "x"}),
        "Field `task` must be a `Task`. Got `Patient`",
    ),
]


@pytest.mark.parametrize(
    ("fixture", "hook", "mutate", "expected"),
    REQUEST_MUTATIONS,
    ids=[m[3][:50] for m in REQUEST_MUTATIONS],
)
def test_mutated_requests_fail(fixture: str, hook: str, mutate: Mutation, expected: str) -> None:
    body = request(fixture)
    mutate(body)
    assert_fails_with(crd.check_hook_request(hook, body), expected)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("fhirAuthorization.token_type", "MAC"), "`token_type` field is not set to 'Bearer'"),
        (_set("fhirAuthorization.expires_in", "300"), "field expires_in is not of type Integer"),
        (_delete("fhirAuthorization.subject"), "did not contain required field: `subject`"),
        (_set("fhirAuthorization.patient", ""), "field `patient` cannot be defined but blank"),
        (_set("prefetch", {}), "field `prefetch` cannot be defined but blank"),
        (_set("prefetch", []), "field `prefetch` cannot be defined but blank"),
        (_set("fhirServer", 7), "field fhirServer is not of type String"),
        (_set("extension", {}), "field `extension` cannot be defined but blank"),
    ],
)
def test_mutated_optional_request_fields_fail(mutate: Mutation, expected: str) -> None:
    body = request("extracted/order_sign_request_bodies.json")
    mutate(body)
    assert_fails_with(crd.check_hook_request_optional_fields(body), expected)


# ---------------------------------------------------------------------------------------------
# Discovery


def test_kit_discovery_document_passes_the_kit_checks() -> None:
    assert crd.check_discovery(load("routes/cds-services.json")) == []
    assert crd.check_discovery_endpoint(200, _raw("routes/cds-services.json")) == []
    assert crd.check_discovery({"services": []}) == []  # the kit skips


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, "did not contain `services`"),
        ({"services": {"id": "x"}}, "is not an array"),
        ({"services": [{"hook": "order-sign", "id": "x"}]}, "required field: `description`"),
        ({"services": [{"hook": 1, "id": "x", "description": "d"}]}, "`hook` is not of type"),
    ],
)
def test_bad_discovery_documents_fail(document: Json, expected: str) -> None:
    assert_fails_with(crd.check_discovery(document), expected)


def test_discovery_endpoint_status_and_json() -> None:
    assert_fails_with(crd.check_discovery_endpoint(404, "{}"), "expected 200, but received 404")
    assert_fails_with(crd.check_discovery_endpoint(200, "<html>"), "not valid JSON")
    assert crd.check_service_call(200, b'{"cards": []}') == []
    assert_fails_with(crd.check_service_call(500, b"{}"), "received 500")


def _option(number: int, field: str) -> tuple[str, ...]:
    return ("services", "0", "extension", crd.CONFIGURATION_OPTIONS_KEY, str(number), field)


def greenlight_discovery() -> Json:
    """The kit's discovery document plus the CRD configuration options Greenlight must offer."""
    document: Json = load("routes/cds-services.json")
    for service in document["services"]:
        service["extension"] = {
            crd.CONFIGURATION_OPTIONS_KEY: [
                {
                    "code": "coverage-info",
                    "type": "boolean",
                    "name": "Coverage Information",
                    "description": "Return coverage information system actions.",
                    "default": True,
                },
                {
                    "code": "guideline",
                    "type": "boolean",
                    "name": "Guidelines",
                    "description": "Return guideline cards.",
                    "default": True,
                },
                {
                    "code": "max-cards",
                    "type": "integer",
                    "name": "Maximum cards",
                    "description": "The most cards to return.",
                    "default": 10,
                },
            ]
        }
    return document


def test_kit_discovery_document_fails_the_greenlight_checks() -> None:
    # Kit fixture failing a check: Inferno's simulated CRD server advertises no
    # `davinci-crd.configuration-options`, which CRD requires of a CRD server.
    errors = crd.check_discovery_crd(load("routes/cds-services.json"))
    assert len(errors) == 6
    assert all("configuration-options" in error for error in errors)


def test_greenlight_discovery_passes() -> None:
    document = greenlight_discovery()
    assert crd.check_discovery_crd(document, card_types=("coverage-info", "guideline")) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _set(_option(1, "code"), "coverage-info"),
            "`code` `coverage-info` is not unique",
        ),
        (
            _delete(_option(0, "default")),
            "has no `default`",
        ),
        (
            _set(_option(0, "default"), "true"),
            '`default` "true" is not a JSON boolean',
        ),
        (
            _set(_option(2, "default"), True),
            "`default` true is not a JSON integer",
        ),
        (
            _set(_option(0, "type"), "integer"),
            "no boolean configuration option for the `coverage-info` card type",
        ),
        (
            _set(_option(1, "code"), "banana"),
            "boolean option code `banana` is not a CRD card type",
        ),
        (
            _set(_option(0, "type"), "string"),
            "`type` must be `boolean` or `integer`",
        ),
        (
            _set(_option(0, "name"), ""),
            "`name` must be a non-empty string",
        ),
        (_delete("services.0.prefetch"), "has no `prefetch` templates"),
        (_delete("services.0.prefetch.coverage"), "prefetch has no `coverage` template"),
        (_set("services.0.prefetch.user", "{{userId}}"), "unknown token `{{userId}}`"),
        (_set("services.0.prefetch.user", "{{context.userId}"), "unbalanced"),
        (_set("services.3.hook", "order-sign"), "no service for the `order-dispatch` hook"),
        (_set("services.1.id", "appointment-book-service"), "is used more than once"),
    ],
)
def test_mutated_greenlight_discovery_fails(mutate: Mutation, expected: str) -> None:
    document = greenlight_discovery()
    mutate(document)
    errors = crd.check_discovery_crd(document)
    assert_fails_with(errors, expected)
    assert all(error.startswith("[greenlight]") for error in errors)


# ---------------------------------------------------------------------------------------------
# Responses


def authorization_response() -> Json:
    response: Json = load("spec/fixtures/crd_authorization_hook_response.json")
    return response


def valid_cards_response() -> Json:
    return {"cards": load("spec/fixtures/valid_cards.json")}


def covered_action() -> Json:
    action: Json = load("spec/fixtures/coverage_info_system_action_covered.json")
    return action


def test_kit_hook_response_passes() -> None:
    response = authorization_response()
    request_body = request("spec/fixtures/appointment_book_hook_request.json")
    assert crd.check_hook_response("appointment-book", request_body, response) == []


def test_kit_valid_cards_pass() -> None:
    assert crd.check_hook_response("order-select", None, valid_cards_response()) == []


def test_primary_hooks_need_system_actions() -> None:
    for hook in ("order-sign", "order-dispatch", "appointment-book"):
        assert_fails_with(
            crd.check_hook_response(hook, None, valid_cards_response()),
            f"did not have the `systemActions` field, which must be present for the `{hook}`",
        )
    for hook in ("order-select", "encounter-start", "encounter-discharge"):
        assert crd.check_hook_response(hook, None, valid_cards_response()) == []


CARD_FILES = sorted(p.name for p in (KIT / "card_responses").glob("*.json"))


@pytest.mark.parametrize("name", CARD_FILES)
def test_kit_card_templates(name: str) -> None:
    card = load(f"card_responses/{name}")
    assert crd.check_card(card) == []
    errors = crd.check_card_optional_fields(card)
    if name == "launch_smart_app.json":
        # Kit template failing a check: its link url is `INFERNO_PLACEHOLDER`, which Inferno
        # replaces with its own launch URL before serving it; as stored it is not a URL.
        assert errors == ['Card links[0] field `url` is not a valid URL: "INFERNO_PLACEHOLDER".']
    elif name == "propose_alternate_request.json":
        # Kit template failing a check: its suggestion has `actions: []`, which Inferno fills
        # at run time; the kit's own optional-fields test rejects an empty actions array.
        assert errors == [
            "Card suggestions[0]: Suggestion `actions` field should not be an empty Array."
        ]
    else:
        assert errors == []


def _card_with(mutate: Mutation) -> Json:
    response = valid_cards_response()
    mutate(response)
    return response


RESPONSE_MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("summary 140", _set("cards.0.summary", "x" * 140), "over the 140-character limit"),
    ("summary missing", _delete("cards.0.summary"), "does not contain required field `summary`"),
    ("summary blank", _set("cards.0.summary", " "), "field `summary` should not be an empty"),
    ("indicator", _set("cards.0.indicator", "hard-stop"), "`indicator` is `hard-stop`"),
    ("source", _delete("cards.0.source"), "does not contain required field `source`"),
    ("topic", _delete("cards.0.source.topic"), "does not contain required field `topic`"),
    ("label", _delete("cards.0.source.label"), "does not contain required field `label`"),
    (
        "topic system",
        _delete("cards.0.source.topic.system"),
        "source topic does not contain required field `system`",
    ),
    ("topic code", _set("cards.0.source.topic.code", 5), "field `code` is not of type `String`"),
    ("cards", _set("cards", {}), "`cards` field of server response is not an array"),
    ("no cards", _delete("cards"), "did not have the `cards` field"),
    ("link type", _set("cards.0.links.0.type", "other"), "`Link.type` must be `absolute` or"),
    ("link url", _set("cards.0.links.0.url", "ftp://x.org/a"), "field `url` is not a valid URL"),
    ("link label", _delete("cards.0.links.0.label"), "does not contain required field `label`"),
    (
        "appContext",
        _set("cards.0.links.0.appContext", "{}"),
        "`appContext` field should only be valued if the link type is smart",
    ),
    ("uuid", _set("cards.0.uuid", 7), "field `uuid` is not of type `String`"),
    ("detail", _set("cards.0.detail", ""), "field `detail` should not be an empty String"),
    (
        "selectionBehavior",
        _delete("cards.3.selectionBehavior"),
        "`Card.selectionBehavior` must be provided if suggestions are present",
    ),
    (
        "selectionBehavior value",
        _set("cards.3.selectionBehavior", "all"),
        "`selectionBehavior` all",
    ),
    ("empty suggestions", _set("cards.3.suggestions", []), "field `suggestions` should not be"),
    (
        "empty actions",
        _set("cards.3.suggestions.0.actions", []),
        "`actions` field should not be an empty Array",
    ),
    (
        "actions object",
        _set("cards.3.suggestions.0.actions", {}),
        "`actions` field is not of type Array",
    ),
    (
        "suggestion label",
        _delete("cards.3.suggestions.0.label"),
        "does not contain required field `label`",
    ),
    (
        "action description",
        _delete("cards.3.suggestions.0.actions.0.description"),
        "does not contain required field `description`",
    ),
    (
        "action type",
        _set("cards.3.suggestions.0.actions.0.type", "replace"),
        "type value `replace` is not allowed",
    ),
    (
        "delete resourceId",
        _set("cards.3.suggestions.0.actions.0.resourceId", "MedicationRequest"),
        "Invalid `Action.resourceId` format",
    ),
    (
        "create without resource",
        _delete("cards.3.suggestions.0.actions.1.resource"),
        "`Action.resource` must be present for `create` actions",
    ),
    (
        "create not FHIR",
        _set("cards.3.suggestions.0.actions.1.resource.resourceType", "Prescription"),
        "`Action.resource` must be a FHIR resource",
    ),
    (
        "override reason",
        _delete("cards.2.overrideReasons.0.display"),
        "overrideReasons[0] does not contain required field `display`",
    ),
]


@pytest.mark.parametrize(
    ("label", "mutate", "expected"), RESPONSE_MUTATIONS, ids=[m[0] for m in RESPONSE_MUTATIONS]
)
def test_mutated_cards_fail(label: str, mutate: Mutation, expected: str) -> None:
    errors = crd.check_hook_response("order-select", None, _card_with(mutate))
    assert_fails_with(errors, expected)


def test_summary_of_139_characters_passes() -> None:
    response = _card_with(_set("cards.0.summary", "x" * 139))
    assert crd.check_hook_response("order-select", None, response) == []


def test_optional_fields_are_checked_only_on_cards_with_valid_required_fields() -> None:
    response = _card_with(_set("cards.0.links.0.type", "other"))
    response["cards"][0]["indicator"] = "loud"
    errors = crd.check_hook_response("order-select", None, response)
    assert errors_with(errors, "`indicator` is `loud`")
    assert not errors_with(errors, "Link.type")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_delete("systemActions.0.description"), "does not contain required field `description`"),
        (_set("systemActions.0.type", "patch"), "type value `patch` is not allowed"),
        (_delete("systemActions.0.resource"), "must be present for `update` actions"),
        (_set("systemActions", {}), "`systemActions` of server response is not an array"),
        (_delete("systemActions"), "did not have the `systemActions` field"),
    ],
)
def test_mutated_system_actions_fail(mutate: Mutation, expected: str) -> None:
    response = authorization_response()
    mutate(response)
    assert_fails_with(crd.check_hook_response("appointment-book", None, response), expected)


def test_kit_other_system_action_has_no_description() -> None:
    # Kit fixture failing a kit check: other_system_action.json (the kit's example of a
    # system action that is not coverage information) has no `description`.
    action = load("spec/fixtures/other_system_action.json")
    assert crd.check_action(action) == ["Action does not contain required field `description`."]
    assert not crd.is_coverage_information_action(action)
    response = {"cards": [], "systemActions": [action]}
    assert crd.classify_cards(response, "order-sign")["coverage_information"] == []


def test_greenlight_card_rules() -> None:
    # Kit fixtures failing a Greenlight check: their source.topic codes are hook names
    # (`appointment-book`, `order-select`), not CRD card types, and most of their suggestions
    # have no `uuid` (CRD requires one on every suggestion).
    errors = crd.check_hook_response_crd(authorization_response())
    assert len(errors) == 2
    assert all("is not a CRD card type" in error for error in errors)
    errors = crd.check_hook_response_crd(valid_cards_response())
    assert len(errors_with(errors, "has no `uuid`")) == 3
    fixed = valid_cards_response()
    for card in fixed["cards"]:
        card["source"]["topic"] = {"system": crd.CRD_TEMP_SYSTEM, "code": "coverage-info"}
        for number, suggestion in enumerate(card.get("suggestions", [])):
            suggestion["uuid"] = f"urn:uuid:{number}"
    assert crd.check_hook_response_crd(fixed) == []


# ---------------------------------------------------------------------------------------------
# Classification


def summaries(cards: list[crd.JsonObject]) -> list[str]:
    return [str(card["summary"]) for card in cards]


def test_classify_kit_valid_cards() -> None:
    found = crd.classify_cards(valid_cards_response(), "order-select")
    assert {key: summaries(value) for key, value in found.items()} == {
        "external_reference": ["Order Select External Reference Card"],
        "launch_smart_app": ["Order Select Launch SMART Application Card"],
        # The override-reasons card has neither links nor suggestions, so the kit counts it.
        "instructions": ["Order Select Resjection Card"],
        "coverage_information": [],
        "propose_alternate_request": ["Order Select Propose Alternate Request Card"],
        "additional_orders": ["Order Select Additional Orders As Companions/Prerequisites Card"],
        "request_form_completion": ["Order Select Request Form Completion Card"],
        "request_form_completion_actions": [],
        "create_update_coverage": ["Order Select Create or Update Coverage Info Card"],
        "create_update_coverage_actions": [],
    }


def test_classify_kit_hook_response() -> None:
    response = authorization_response()
    found = crd.classify_cards(response, "appointment-book")
    assert summaries(found["instructions"]) == ["Appointment Book Instructions Card"]
    assert summaries(found["external_reference"]) == ["Appointment Book External Reference Card"]
    assert found["coverage_information"] == response["systemActions"]
    # Coverage information on an Appointment is not what an order-sign service updates.
    assert crd.classify_cards(response, "order-sign")["coverage_information"] == []
    assert crd.classify_cards(response)["coverage_information"] == response["systemActions"]


def test_classify_kit_card_templates() -> None:
    cards = [load(f"card_responses/{name}") for name in CARD_FILES]
    found = crd.classify_cards({"cards": cards})
    assert summaries(found["external_reference"]) == ["External Reference Card"]
    assert summaries(found["instructions"]) == ["Instructions Card"]
    assert summaries(found["additional_orders"]) == [
        "Additional Orders As Companions/Prerequisites Card"
    ]
    assert summaries(found["request_form_completion"]) == ["Request Form Completion Card"]
    # The templates Inferno completes at run time are not recognised as stored: launch SMART
    # (placeholder URL), propose alternate (empty actions), create/update coverage (no actions).
    assert found["launch_smart_app"] == []
    assert found["propose_alternate_request"] == []
    assert found["create_update_coverage"] == []


def test_classify_system_actions() -> None:
    form = load("card_responses/request_form_completion.json")
    task_action = form["suggestions"][0]["actions"][1]
    coverage_card = load("spec/fixtures/valid_cards.json")[6]
    coverage_action = coverage_card["suggestions"][0]["actions"][0]
    response = {"cards": [], "systemActions": [task_action, coverage_action, covered_action()]}
    found = crd.classify_cards(response, "order-sign")
    assert found["request_form_completion_actions"] == [task_action]
    assert found["create_update_coverage_actions"] == [coverage_action]
    assert found["coverage_information"] == [covered_action()]


# ---------------------------------------------------------------------------------------------
# Coverage information


def coverage_extension(action: Json) -> Json:
    extension: Json = action["resource"]["extension"][0]
    return extension


def sub(extension: Json, url: str) -> Json:
    found: Json = next(e for e in extension["extension"] if e["url"] == url)
    return found


def drop(extension: Json, url: str) -> None:
    extension["extension"] = [e for e in extension["extension"] if e["url"] != url]


def _not_covered_without_pa(extension: Any) -> None:
    drop(extension, "pa-needed")
    sub(extension, "covered").update(valueCode="not-covered")


def add(parent: Json, url: str, /, **value: Any) -> None:
    parent["extension"].append({"url": url, **value})


def test_kit_coverage_information_actions_pass() -> None:
    action = covered_action()
    assert crd.check_coverage_information("order-sign", order_sign_request(), [action]) == []
    response = authorization_response()
    actions = crd.classify_cards(response, "appointment-book")["coverage_information"]
    assert crd.check_coverage_information("appointment-book", None, actions) == []


def test_kit_conditional_coverage_information_action() -> None:
    # Kit fixture failing checks: coverage_info_system_action_conditional.json has
    # covered=conditional with no pa-needed, and doc-purpose with no reason.
    # - crd-ci-q2 as published in CRD 2.0.1 is the FHIRPath
    #   `covered != 'not-covered' implies pa-needed.exists()` (contradicting its own text);
    #   the HL7 validator Inferno runs evaluates the FHIRPath, so it would reject this fixture.
    # - crd-ci-q8 is a CRD 2.2 invariant (doc-purpose requires a reason).
    action = load("spec/fixtures/coverage_info_system_action_conditional.json")
    errors = crd.check_coverage_information("order-sign", order_sign_request(), [action])
    assert [error.split(":")[0] for error in errors] == ["crd-ci-q2/2.0.1-fhirpath", "crd-ci-q8"]
    described_201 = {"crd-ci-q1", "crd-ci-q2", "crd-ci-q3", "crd-ci-q4", "crd-ci-q5"}
    assert (
        crd.check_coverage_information(
            "order-sign", order_sign_request(), [action], invariants=described_201
        )
        == []
    )


def test_crd_201_annotated_example_passes() -> None:
    with tarfile.open(FHIR_PACKAGES / "davinci-crd-2.0.1.tgz") as archive:
        handle = archive.extractfile("package/example/MedicationRequest-annotated-example.json")
        assert handle is not None
        example = json.loads(handle.read())
    extensions = [e for e in example["extension"] if e["url"] == CI]
    assert len(extensions) == 1
    assert crd.check_coverage_information_extension(extensions[0]) == []


def test_coverage_information_codes_come_from_the_201_package() -> None:
    slices = {s.name: s for s in crd.coverage_information_slices()}
    codes = {
        name: sorted(crd.crd_codes(s.required_value_set))
        for name, s in slices.items()
        if s.required_value_set
    }
    # CRD 2.0.1 differs from 2.2: no `indeterminate`, doc-needed has `both` (not `patient`),
    # info-needed has no `detail-code`, and there is no `expiry-date` sub-extension.
    assert codes == {
        "covered": ["conditional", "covered", "not-covered"],
        "pa-needed": ["auth-needed", "conditional", "no-auth", "performpa", "satisfied"],
        "doc-needed": ["admin", "both", "clinical", "conditional"],
        "doc-purpose": ["OTH", "retain-doc", "withclaim", "withorder", "withpa"],
        "info-needed": ["OTH", "contract-window", "location", "performer", "timeframe"],
    }
    assert [(s.name, s.min, s.max) for s in slices.values() if s.min] == [
        ("coverage", 1, 1),
        ("covered", 1, 1),
        ("date", 1, 1),
        ("coverage-assertion-id", 1, 1),
    ]
    assert {"satisfied-pa-id", "billingCode", "reason", "detail", "questionnaire"} <= set(slices)
    assert "expiry-date" not in slices
    assert slices["doc-needed"].max == 1


ExtensionMutation = Callable[[Json], object]


def steps(*mutations: ExtensionMutation) -> ExtensionMutation:
    """Several mutations applied in order."""

    def apply(extension: Json) -> None:
        for mutation in mutations:
            mutation(extension)

    return apply


EXTENSION_MUTATIONS: list[tuple[str, ExtensionMutation, str]] = [
    (
        "q1 questionnaire without doc-needed",
        lambda e: add(e, "questionnaire", valueCanonical="http://example.org/Questionnaire/x"),
        "crd-ci-q1:",
    ),
    (
        "q2 not-covered with pa-needed",
        lambda e: sub(e, "covered").update(valueCode="not-covered"),
        "crd-ci-q2:",
    ),
    (
        "q2 (2.0.1 FHIRPath) covered without pa-needed",
        lambda e: drop(e, "pa-needed"),
        "crd-ci-q2/2.0.1-fhirpath:",
    ),
    (
        "q2 (2.0.1 FHIRPath, as the HL7 validator evaluates it) not-covered without pa-needed",
        lambda e: _not_covered_without_pa(e),
        "crd-ci-q2/2.0.1-fhirpath:",
    ),
    (
        "q3 conditional without info-needed",
        lambda e: sub(e, "pa-needed").update(valueCode="conditional"),
        "crd-ci-q3: ext-coverage-information: a `conditional` value requires `info-needed`",
    ),
    (
        "q3 info-needed without conditional",
        lambda e: add(e, "info-needed", valueCode="performer"),
        "crd-ci-q3: ext-coverage-information: `info-needed` requires",
    ),
    (
        "q4 withpa when no auth is needed",
        steps(
            lambda e: add(e, "doc-needed", valueCode="clinical"),
            lambda e: add(e, "doc-purpose", valueCode="withpa"),
            lambda e: add(e, "reason", valueCodeableConcept={"text": "policy"}),
        ),
        "crd-ci-q4:",
    ),
    (
        "q5 satisfied-pa-id without satisfied",
        lambda e: add(e, "satisfied-pa-id", valueString="PA123"),
        "crd-ci-q5:",
    ),
    (
        "q5 satisfied without satisfied-pa-id",
        lambda e: sub(e, "pa-needed").update(valueCode="satisfied"),
        "crd-ci-q5:",
    ),
    (
        "q6 info-needed OTH without reason",
        steps(
            lambda e: sub(e, "pa-needed").update(valueCode="conditional"),
            lambda e: add(e, "info-needed", valueCode="OTH"),
        ),
        "crd-ci-q6:",
    ),
    (
        "q7 reason code outside the value set without text",
        lambda e: add(
            e,
            "reason",
            valueCodeableConcept={"coding": [{"system": "http://example.org", "code": "x"}]},
        ),
        "crd-ci-q7:",
    ),
    (
        "q8 doc-purpose without reason",
        steps(
            lambda e: add(e, "doc-needed", valueCode="clinical"),
            lambda e: add(e, "doc-purpose", valueCode="withclaim"),
        ),
        "crd-ci-q8:",
    ),
    (
        "q9 indeterminate without reason",
        lambda e: sub(e, "covered").update(valueCode="indeterminate"),
        "crd-ci-q9:",
    ),
    (
        "indeterminate is not a CRD 2.0.1 code",
        lambda e: sub(e, "covered").update(valueCode="indeterminate"),
        "extension[covered]: code `indeterminate` is not in the required value set",
    ),
    (
        "doc-needed patient is CRD 2.2 only",
        lambda e: add(e, "doc-needed", valueCode="patient"),
        "extension[doc-needed]: code `patient` is not in the required value set",
    ),
    (
        "info-needed detail-code is CRD 2.2 only",
        steps(
            lambda e: sub(e, "pa-needed").update(valueCode="conditional"),
            lambda e: add(e, "info-needed", valueCode="detail-code"),
        ),
        "extension[info-needed]: code `detail-code` is not in the required value set",
    ),
    ("coverage required", lambda e: drop(e, "coverage"), "sub-extension `coverage` is required"),
    ("covered required", lambda e: drop(e, "covered"), "sub-extension `covered` is required"),
    ("date required", lambda e: drop(e, "date"), "sub-extension `date` is required"),
    (
        "coverage-assertion-id required",
        lambda e: drop(e, "coverage-assertion-id"),
        "sub-extension `coverage-assertion-id` is required",
    ),
    (
        "covered twice",
        lambda e: add(e, "covered", valueCode="covered"),
        "sub-extension `covered` appears 2 times (max 1)",
    ),
    (
        "doc-needed twice (0..1 in 2.0.1)",
        steps(
            lambda e: add(e, "doc-needed", valueCode="clinical"),
            lambda e: add(e, "doc-needed", valueCode="admin"),
        ),
        "sub-extension `doc-needed` appears 2 times (max 1)",
    ),
    (
        "date format",
        lambda e: sub(e, "date").update(valueDate="12/01/2026"),
        "is not a FHIR date",
    ),
    (
        "covered as a string",
        lambda e: sub(e, "covered").update(valueString=sub(e, "covered").pop("valueCode")),
        "`valueString` is not allowed; expected valueCode",
    ),
    (
        "coverage pointing at a Patient",
        lambda e: sub(e, "coverage").update(valueReference={"reference": "Patient/pat015"}),
        "is not a reference to a Coverage",
    ),
    (
        "sub-extension with no value",
        lambda e: sub(e, "coverage-assertion-id").pop("valueString"),
        "extension[coverage-assertion-id]: has no value[x]",
    ),
    (
        "detail without value",
        lambda e: add(
            e,
            "detail",
            extension=[{"url": "code", "valueCodeableConcept": {"text": "allowed-quantity"}}],
        ),
        "extension[detail]: sub-extension `value` is required",
    ),
    (
        "value on the extension itself",
        lambda e: e.update(valueString="x"),
        "ext-coverage-information: must not have a value[x]",
    ),
]


@pytest.mark.parametrize(
    ("label", "mutate", "expected"),
    EXTENSION_MUTATIONS,
    ids=[m[0] for m in EXTENSION_MUTATIONS],
)
def test_mutated_coverage_information_fails(
    label: str, mutate: ExtensionMutation, expected: str
) -> None:
    extension = coverage_extension(covered_action())
    assert crd.check_coverage_information_extension(extension) == []
    mutate(extension)
    assert_fails_with(crd.check_coverage_information_extension(extension), expected)


def test_reason_from_the_value_set_needs_no_text() -> None:
    extension = coverage_extension(covered_action())
    coding = {"system": crd.CRD_TEMP_SYSTEM, "code": "gold-card"}
    add(extension, "reason", valueCodeableConcept={"coding": [coding]})
    assert crd.check_coverage_information_extension(extension) == []


def two_coverages(action: Json, *, second_assertion: str, second_coverage: str) -> Json:
    extension = coverage_extension(action)
    other = copy.deepcopy(extension)
    sub(other, "coverage")["valueReference"] = {"reference": second_coverage}
    sub(other, "coverage-assertion-id")["valueString"] = second_assertion
    action["resource"]["extension"].append(other)
    return action


def test_two_assertion_ids_for_one_coverage_fail() -> None:
    action = two_coverages(
        covered_action(), second_assertion="other-id", second_coverage="Coverage/coverageexample"
    )
    errors = crd.check_coverage_information("order-sign", order_sign_request(), [action])
    assert errors == [
        "DeviceRequest/devreq-015-e0250: extension has multiple repetitions of coverage "
        "`Coverage/coverageexample` with different coverage-assertion-ids."
    ]


def test_same_assertion_id_for_two_coverages_fails() -> None:
    action = covered_action()
    same = sub(coverage_extension(action), "coverage-assertion-id")["valueString"]
    action = two_coverages(action, second_assertion=same, second_coverage="Coverage/secondary")
    errors = crd.check_coverage_information("order-sign", order_sign_request(), [action])
    assert errors == [
        "DeviceRequest/devreq-015-e0250: extensions referencing differing coverage SHALL have "
        "distinct coverage-assertion-ids."
    ]


def test_satisfied_pa_ids_per_coverage() -> None:
    action = two_coverages(
        covered_action(), second_assertion="a2", second_coverage="Coverage/secondary"
    )
    for extension in action["resource"]["extension"]:
        sub(extension, "pa-needed")["valueCode"] = "satisfied"
        add(extension, "satisfied-pa-id", valueString="PA-1")
    errors = crd.check_coverage_information("order-sign", order_sign_request(), [action])
    assert errors == [
        "DeviceRequest/devreq-015-e0250: extensions referencing differing coverage SHALL have "
        "distinct satisfied-pa-ids."
    ]
    same_coverage = copy.deepcopy(coverage_extension(action))
    sub(same_coverage, "satisfied-pa-id")["valueString"] = "PA-2"
    action["resource"]["extension"].append(same_coverage)
    errors = crd.check_coverage_information("order-sign", order_sign_request(), [action])
    assert_fails_with(errors, "with different satisfied-pa-ids")


def test_coverage_information_action_rules() -> None:
    request_body = order_sign_request()
    action = covered_action()
    action["type"] = "create"
    assert_fails_with(
        crd.check_coverage_information("order-sign", request_body, [action]),
        "`type` must be `update`, but was `create`",
    )
    action = covered_action()
    action["resource"]["extension"] = []
    assert_fails_with(
        crd.check_coverage_information("order-sign", request_body, [action]),
        "has no ext-coverage-information extension",
    )
    action = covered_action()
    action["resource"]["id"] = "not-in-the-request"
    assert_fails_with(
        crd.check_coverage_information("order-sign", request_body, [action]),
        "[greenlight] coverage information action[0] DeviceRequest/not-in-the-request: the "
        "updated resource is not one the request names.",
    )
    assert crd.check_coverage_information("order-sign", None, [action]) == []
    assert_fails_with(
        crd.check_coverage_information("encounter-start", None, [covered_action()]),
        "a encounter-start Coverage Information action updates Encounter, not DeviceRequest",
    )


def test_coverage_information_is_required_for_primary_hooks_only() -> None:
    for hook in ("appointment-book", "order-sign", "order-dispatch"):
        assert crd.check_coverage_information(hook, None, []) == [
            f"Coverage Information system action was not returned in the {hook} hook response."
        ]
    for hook in ("order-select", "encounter-start", "encounter-discharge"):
        assert crd.check_coverage_information(hook, None, []) == []


def test_coverage_information_validate_callback() -> None:
    recorder = Recorder(["bad DeviceRequest"])
    errors = crd.check_coverage_information(
        "order-sign", order_sign_request(), [covered_action()], recorder
    )
    assert recorder.calls == [("DeviceRequest", crd.PROFILE_BY_TYPE["DeviceRequest"])]
    assert errors == ["bad DeviceRequest"]


def test_coverage_information_for_order_dispatch_and_encounters() -> None:
    dispatch = request("extracted/order_dispatch_request_bodies.inferno_client_preset.json", 1)
    action = covered_action()
    action["resource"]["id"] = "devreq015"
    assert crd.check_coverage_information("order-dispatch", dispatch, [action]) == []
    start = request("extracted/encounter_start_request_bodies.json")
    action["resource"] = {
        "resourceType": "Encounter",
        "id": "pat015-rad-encounter",
        "extension": covered_action()["resource"]["extension"],
    }
    assert crd.check_coverage_information("encounter-start", start, [action]) == []


# ---------------------------------------------------------------------------------------------
# Other response types


def valid_card(index: int) -> Json:
    card: Json = load("spec/fixtures/valid_cards.json")[index]
    return card


def test_kit_propose_alternate_request_card_passes() -> None:
    card = valid_card(3)
    select = request("spec/fixtures/order_select_hook_request.json")
    recorder = Recorder()
    assert crd.check_propose_alternate_request(select, [card], recorder) == []
    assert recorder.calls == [("MedicationRequest", crd.PROFILE_BY_TYPE["MedicationRequest"])]


def test_mutated_propose_alternate_request_cards_fail() -> None:
    select = request("spec/fixtures/order_select_hook_request.json")
    card = valid_card(3)
    card["suggestions"][0]["actions"][0]["resourceId"] = "MedicationRequest/other"
    assert_fails_with(
        crd.check_propose_alternate_request(select, [card]),
        "MedicationRequest/other is not in `draftOrders`",
    )
    card = valid_card(3)
    card["suggestions"][0]["actions"][1]["resource"]["resourceType"] = "ServiceRequest"
    assert_fails_with(
        crd.check_propose_alternate_request(select, [card]),
        "There's no `create` action for the proposed order being deleted",
    )
    card = valid_card(3)
    replacement = card["suggestions"][0]["actions"][1]
    replacement["type"] = "update"
    replacement["resource"]["id"] = "not-a-draft"
    assert_fails_with(
        crd.check_propose_alternate_request([select], [card]),
        "MedicationRequest/not-a-draft is not in the `context.draftOrders`",
    )
    replacement["resource"]["id"] = "smart-MedicationRequest-103"
    card["suggestions"][0]["actions"] = [replacement]
    assert crd.check_propose_alternate_request([select], [card]) == []


def test_additional_orders() -> None:
    recorder = Recorder()
    cards = [valid_card(4), load("card_responses/companions_prerequisites.json")]
    assert crd.check_additional_orders(cards, recorder) == []
    assert recorder.calls == [("ServiceRequest", crd.PROFILE_BY_TYPE["ServiceRequest"])] * 2
    cards[0]["suggestions"][0]["actions"][0]["type"] = "update"
    assert_fails_with(crd.check_additional_orders(cards), "[greenlight] additional orders card[0]")
    assert crd.check_additional_orders(cards, Recorder(["invalid"])) == [
        errors_with(crd.check_additional_orders(cards), "[greenlight]")[0],
        "invalid",
        "invalid",
    ]


def form_card() -> Json:
    card: Json = load("card_responses/request_form_completion.json")
    return card


def form_task(card: Json) -> Json:
    task: Json = card["suggestions"][0]["actions"][1]["resource"]
    return task


def test_form_completion_passes() -> None:
    recorder = Recorder()
    card = form_card()
    assert crd.check_form_completion([card, valid_card(5)], [], recorder) == []
    assert recorder.calls == [("Task", crd.PROFILE_BY_TYPE["Task"])] * 2
    action = card["suggestions"][0]["actions"][1]
    assert crd.check_form_completion([], [action]) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda t: t["code"]["coding"][0].update(code="fill-it-in"),
            "does not include `complete-questionnaire`",
        ),
        (
            lambda t: t["input"][0]["type"].update(text="form"),
            "no input with `type.text` = `questionnaire`",
        ),
        (
            lambda t: t["input"][0].update(valueCanonical="Questionnaire/XYZ"),
            "`valueCanonical` is not a valid http(s) URL",
        ),
    ],
)
def test_mutated_form_completion_tasks_fail(mutate: Callable[[Json], None], expected: str) -> None:
    card = form_card()
    mutate(form_task(card))
    assert_fails_with(crd.check_form_completion([card]), expected)
    # and the kit no longer recognises the card as Request Form Completion
    assert not crd.is_form_completion_card(card)


def test_create_update_coverage() -> None:
    card = valid_card(6)
    recorder = Recorder()
    assert crd.check_create_update_coverage([card], [], recorder) == []
    assert recorder.calls == [("Coverage", crd.PROFILE_BY_TYPE["Coverage"])]
    del card["suggestions"][0]["actions"][0]["resource"]["id"]
    assert_fails_with(
        crd.check_create_update_coverage([card]), "an `update` of a Coverage needs its `id`"
    )
    coverage = load("spec/fixtures/crd_coverage_example.json")
    action = {"type": "create", "description": "Add coverage", "resource": coverage}
    assert crd.check_create_update_coverage([], [action], Recorder(["bad"])) == ["bad"]


# ---------------------------------------------------------------------------------------------
# Hook groups and group 3.7


def order_sign_response() -> Json:
    """A response to the kit's first order-sign request that shows every required type."""
    return {
        "cards": [
            load("card_responses/instructions.json"),
            load("card_responses/external_reference.json"),
        ],
        "systemActions": [covered_action()],
    }


def test_run_hook_group_on_kit_fixtures() -> None:
    results = crd.run_hook_group("order-sign", [(order_sign_request(), order_sign_response())])
    assert results == {
        crd.T_REQUIRED_FIELDS: [],
        crd.T_CONTEXT: [],
        crd.T_OPTIONAL_FIELDS: [],
        crd.T_RESPONSE: [],
        crd.T_CARD_OPTIONALS: [],
        crd.T_EXTERNAL_REFERENCE: [],
        crd.T_LAUNCH_SMART: None,
        crd.T_INSTRUCTIONS: [],
        crd.T_COVERAGE_RECEIVED: [],
        crd.T_COVERAGE_VALID: [],
        crd.T_PROPOSE_ALTERNATE: None,
        crd.T_ADDITIONAL_ORDERS: None,
        crd.T_FORM_COMPLETION: None,
        crd.T_CREATE_UPDATE_COVERAGE: None,
    }
    assert crd.check_across_hooks([results]) == []


def test_run_hook_group_appointment_book() -> None:
    body = request("extracted/any_hook_request_body.json")
    results = crd.run_hook_group("appointment-book", [(body, authorization_response())])
    assert {key: value for key, value in results.items() if value} == {}
    assert crd.T_PROPOSE_ALTERNATE not in results
    assert crd.check_across_hooks([results]) == []


def test_run_hook_group_reports_per_kit_test() -> None:
    bodies = load("extracted/order_dispatch_request_bodies.json")
    response = {"cards": [valid_card(0)], "systemActions": []}
    results = crd.run_hook_group("order-dispatch", [(b, response) for b in bodies])
    assert results[crd.T_REQUIRED_FIELDS] == [
        'Request 1: `hookInstance` field must be a globally unique UUID, got "f3945c39-dfbe-'
        '444f-ba6d-3e05e123b2va".'
    ]
    assert results[crd.T_INSTRUCTIONS] == [
        "order-dispatch hook response did not contain an Instructions card."
    ]
    assert results[crd.T_COVERAGE_RECEIVED] == [
        "Coverage Information system action was not returned in the order-dispatch hook response."
    ]
    assert results[crd.T_COVERAGE_VALID] is None
    assert results[crd.T_EXTERNAL_REFERENCE] == []


def test_across_hooks_needs_each_required_type_once() -> None:
    sign = crd.run_hook_group("order-sign", [(order_sign_request(), order_sign_response())])
    only_instructions = crd.run_hook_group(
        "encounter-start",
        [
            (
                request("extracted/encounter_start_request_bodies.json"),
                {"cards": [load("card_responses/instructions.json")]},
            )
        ],
    )
    assert crd.check_across_hooks([only_instructions, sign]) == []
    assert crd.check_across_hooks([only_instructions]) == [
        "None of the hooks invoked returned an External Reference card.",
        "None of the hooks invoked returned valid Coverage Info system actions.",
    ]
    assert crd.check_across_hooks([]) == [
        "None of the hooks invoked returned an External Reference card.",
        "None of the hooks invoked returned a valid Instructions card.",
        "None of the hooks invoked returned valid Coverage Info system actions.",
    ]
    invalid = copy.deepcopy(sign)
    invalid[crd.T_COVERAGE_VALID] = ["crd-ci-q5: ..."]
    assert crd.check_across_hooks([invalid, only_instructions]) == [
        "None of the hooks invoked returned valid Coverage Info system actions."
    ]


def test_nothing_invoked_is_no_pass() -> None:
    results = crd.run_hook_group("order-sign", [])
    assert results[crd.T_COVERAGE_RECEIVED]
    assert len(crd.check_across_hooks([results])) == 3


def test_malformed_inputs_are_errors_not_exceptions() -> None:
    junks: list[Any] = [None, [], "x", 3]
    for junk in junks:
        assert crd.check_hook_request("order-sign", junk)
        assert crd.check_hook_request_optional_fields(junk)
        assert crd.check_hook_response("order-sign", None, junk)
        assert crd.check_discovery(junk)
        assert crd.check_coverage_information_extension(junk)
        assert crd.check_card(junk)
        assert crd.check_action(junk)
        assert crd.classify_cards(junk, "order-sign")["instructions"] == []
    assert crd.check_coverage_information("order-sign", None, [None, {"type": "update"}]) == [
        "coverage information action[0] is not an object.",
        "coverage information action[1]: `resource` is not a FHIR resource.",
    ]


def test_fixture_paths_are_shared_not_copied() -> None:
    assert KIT.is_dir()
    assert Path(crd.CRD_PACKAGE).is_file()
    assert not (Path(__file__).parent / "fixtures").exists()
