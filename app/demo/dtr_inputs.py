"""Ready-to-use inputs for Inferno's DTR payer-server suite (`dtr_payer_server`, DTR 2.0.1) against
the demo payer (`make serve`). `app/demo/DEMO.md` says which kit input gives which package.

The kit's static inputs work as sent. Its adaptive ones cannot: the adaptive dinner request
orders "Dinner" by text only (no code a coverage rule could name), and its `$next-question`
requests carry Inferno's own dinner form, not a form of this payer. Inferno leaves the requests
to the tester because "the business logic that determines which questionnaires are returned is
outside of the DTR specification" (the kit's Server-Details), so these files in
`app/demo/inferno/` are ours:

- `dtr_adaptive_questionnaire_request.json`, for `initial_adaptive_questionnaire_request`: the
  kit's example member (Coverage `CoverageExample`, member PFP123450000) asks for the adaptive
  lumbar spine MRI form by its canonical;
- `dtr_next_question_requests.json`, for `next_question_requests`: the three `$next-question`
  requests that complete it (no red flag, 8 weeks of physical therapy, no prior imaging).

Each `$next-question` request holds the form as the previous answer grew it, so the list is made
by running the sequence against a server (the draft response's id and time are fixed, so the
output is the same on every run):

    python -m app.demo.dtr_inputs --server http://127.0.0.1:8080/fhir
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

INPUTS = Path(__file__).resolve().parent / "inferno"
ADAPTIVE_REQUEST = "dtr_adaptive_questionnaire_request.json"
NEXT_QUESTION_REQUESTS = "dtr_next_question_requests.json"
PACKAGE = "/Questionnaire/$questionnaire-package"
NEXT = "/Questionnaire/$next-question"

GL = "http://greenlight.example.org/fhir"
ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
DRAFT_ID = "inferno-adaptive-lumbar-mri"
AUTHORED = "2025-06-01T09:00:00Z"
CLINICIAN = "Practitioner/PractitionerExample"  # the kit's ordering practitioner
MAX_STEPS = 10

Post = Callable[[str, dict[str, Any]], dict[str, Any]]


def _auto(value: dict[str, Any]) -> list[dict[str, Any]]:
    """An answer the DTR client filled in from the chart (information-origin `auto`)."""
    origin = {"url": ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}
    return [{**value, "extension": [origin]}]


def _manual(value: dict[str, Any]) -> list[dict[str, Any]]:
    """An answer the clinician gave (information-origin `manual`, with the author)."""
    author = {
        "url": "author",
        "extension": [{"url": "practitioner", "valueReference": {"reference": CLINICIAN}}],
    }
    origin = {"url": ORIGIN, "extension": [{"url": "source", "valueCode": "manual"}, author]}
    return [{**value, "extension": [origin]}]


#: The completed form: every question the adaptive lumbar MRI form can ask on this path.
ANSWERS: dict[str, list[dict[str, Any]]] = {
    "diagnosis": _auto(
        {"valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M51.16"}}
    ),
    "symptom-weeks": _auto({"valueInteger": 10}),
    "red-flags": _manual(
        {"valueCoding": {"system": f"{GL}/CodeSystem/lumbar-red-flags", "code": "none"}}
    ),
    "neurological-deficit": _manual({"valueBoolean": False}),
    "conservative-therapy-types": _auto(
        {
            "valueCoding": {
                "system": f"{GL}/CodeSystem/conservative-therapy",
                "code": "physical-therapy",
            }
        }
    ),
    "conservative-therapy-weeks": _auto({"valueInteger": 8}),
    "conservative-therapy-response": _manual({"valueString": "Partial relief only"}),
    "prior-imaging-done": _manual({"valueBoolean": False}),
}


def load(name: str) -> Any:
    """One of the shipped input files."""
    return orjson.loads((INPUTS / name).read_bytes())


def _answered(items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """Response items for the Questionnaire `items` that `answers` answers (groups mirrored)."""
    built: list[dict[str, Any]] = []
    for item in items:
        if item.get("type") == "group":
            children = _answered(item.get("item") or [], answers)
            if children:
                built.append({"linkId": item["linkId"], "text": item["text"], "item": children})
        elif item.get("type") != "display" and answers.get(item["linkId"]):
            built.append(
                {"linkId": item["linkId"], "text": item["text"], "answer": answers[item["linkId"]]}
            )
    return built


def with_answers(
    response: dict[str, Any], answers: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """`response` answering every question its contained Questionnaire asks so far."""
    reference = str(response.get("questionnaire") or "")
    questionnaire = next(
        q for q in response.get("contained") or [] if f"#{q.get('id')}" == reference
    )
    return {**response, "item": _answered(questionnaire.get("item") or [], answers)}


def _parameters(response: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": response}],
    }


def next_question_requests(post: Post, package_request: dict[str, Any]) -> list[dict[str, Any]]:
    """The `$next-question` requests that complete the adaptive form `package_request` asks for:
    the package's draft response first, then each answer with the questions it added answered."""
    package = post(PACKAGE, package_request)
    drafts = [
        entry["resource"]
        for parameter in package.get("parameter") or []
        if parameter.get("name") == "PackageBundle"
        for entry in parameter["resource"]["entry"]
        if entry["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    if len(drafts) != 1:
        raise ValueError(f"expected one adaptive package, got {len(drafts)} draft responses")
    response = {**drafts[0], "id": DRAFT_ID, "authored": AUTHORED}
    requests: list[dict[str, Any]] = []
    for _ in range(MAX_STEPS):
        request = _parameters(response)
        requests.append(request)
        answered = post(NEXT, request)
        if answered.get("status") == "completed":
            return requests
        response = with_answers(answered, ANSWERS)
    raise ValueError(f"the form was not completed in {MAX_STEPS} steps")


def http_post(client: httpx.Client) -> Post:
    """`Post` over a FHIR client (base URL set), failing on any answer but 2xx."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(path, json=body)
        if not answer.is_success:
            raise ValueError(f"POST {path}: {answer.status_code} {answer.text[:500]}")
        loaded: dict[str, Any] = answer.json()
        return loaded

    return post


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8080/fhir", help="FHIR base URL")
    parser.add_argument("--out", type=Path, default=INPUTS, help="where to write the list")
    args = parser.parse_args(argv)
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    with httpx.Client(base_url=args.server, headers=headers, timeout=30) as client:
        requests = next_question_requests(http_post(client), load(ADAPTIVE_REQUEST))
    target = args.out / NEXT_QUESTION_REQUESTS
    target.write_bytes(orjson.dumps(requests, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"wrote {len(requests)} requests to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
