"""DTR statements about the Questionnaire and CQL content the payer ships (`questionnaires/`, served
unchanged in every package): logic written in CQL (spec-18), only mustSupport elements relied on
(spec-21), clinical questions closed by a "clinical done" display item (spec-22), CQL 1.5
(spec-92), SDC context and scoping of the expressions (spec-94), and library-qualified
references to definitions (spec-97)."""

from __future__ import annotations

import re
import subprocess
import tarfile
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from app.dtr.adaptive import load_flows
from app.dtr.content import CQF_LIBRARY
from tests.conftest import FHIR_PACKAGES
from tests.dtr.cql_tools import CONTENT, TOOLS, check_translation, content, node_ready

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
LAUNCH_CONTEXT = SDC + "sdc-questionnaire-launchContext"
VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"
CQL_LANGUAGES = {"text/cql", "text/cql-identifier", "text/cql-expression"}
#: `"Library"."definition"`: the only form the payer's CQL expressions take (spec-97).
QUALIFIED = re.compile(r'^"(?P<library>[A-Za-z_]\w*)"\."(?P<define>[^"]+)"$')
_ENV = re.compile(r"%([A-Za-z_]\w*)")


def expressions(
    node: Any, scope: tuple[str, ...] = (), path: str = ""
) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """(path, Expression, names in scope) of every Expression in a Questionnaire (any element,
    any extension); the scope is what SDC makes visible there: variables declared on the
    Questionnaire or an ancestor item (the Questionnaire's own launch contexts are added by the
    caller)."""
    if isinstance(node, dict):
        declared = tuple(
            e["valueExpression"]["name"]
            for e in node.get("extension") or []
            if e.get("url") == VARIABLE and e.get("valueExpression", {}).get("name")
        )
        inner = scope + declared
        for key, value in node.items():
            if isinstance(value, dict) and "expression" in value and "language" in value:
                own = inner if key != "valueExpression" else scope
                yield f"{path}.{key}", value, own
            yield from expressions(value, inner, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from expressions(value, scope, f"{path}[{index}]")


def launch_contexts(questionnaire: dict[str, Any]) -> dict[str, str]:
    found = {}
    for ext in questionnaire.get("extension") or []:
        if ext.get("url") == LAUNCH_CONTEXT:
            parts = {e["url"]: e for e in ext["extension"]}
            found[parts["name"]["valueCoding"]["code"]] = parts["type"]["valueCode"]
    return found


def cqf_libraries(questionnaire: dict[str, Any]) -> list[str]:
    return [
        str(e["valueCanonical"])
        for e in questionnaire.get("extension") or []
        if e.get("url") == CQF_LIBRARY
    ]


QUESTIONNAIRES = sorted(content().questionnaires.values(), key=lambda q: str(q["id"]))


@pytest.mark.requirement("DTR", "spec-18")
@pytest.mark.parametrize("questionnaire", QUESTIONNAIRES, ids=lambda q: str(q["id"]))
def test_all_expression_logic_is_cql(questionnaire: dict[str, Any]) -> None:
    found = list(expressions(questionnaire))
    for path, expression, _scope in found:
        assert expression["language"] in CQL_LANGUAGES, (questionnaire["id"], path)
    if questionnaire.get("item"):  # the adaptive-search form has no items, hence no logic
        assert found, questionnaire["id"]


@pytest.mark.requirement("DTR", "spec-94")
@pytest.mark.requirement("DTR", "spec-97")
@pytest.mark.parametrize("questionnaire", QUESTIONNAIRES, ids=lambda q: str(q["id"]))
def test_expressions_resolve_in_sdc_context(questionnaire: dict[str, Any]) -> None:
    """SDC context (spec-94): the Questionnaire declares the `patient` launch context its CQL
    runs in, every definition an expression names is a Patient-context statement of a library
    the Questionnaire lists with `cqf-library`, and every `%variable` used is a launch context or
    a variable declared on the Questionnaire or an ancestor item. Every reference to a definition
    names its library, `"Library"."statement"` (spec-97), so it stays unambiguous however many
    libraries the Questionnaire lists."""
    published = content()
    libraries = {}
    for canonical in cqf_libraries(questionnaire):
        library = published.library(canonical)
        assert library is not None, canonical
        libraries[library.name] = {
            d["name"]: d for d in library.elm["library"]["statements"]["def"]
        }
    assert libraries, questionnaire["id"]
    contexts = launch_contexts(questionnaire)
    assert contexts.get("patient") == "Patient", questionnaire["id"]
    for path, expression, scope in expressions(questionnaire):
        text = str(expression["expression"])
        used = set(_ENV.findall(text))
        assert used <= set(contexts) | set(scope), (path, used - set(contexts) - set(scope))
        if expression["language"] == "text/cql" and not used:
            match = QUALIFIED.match(text)
            assert match, (questionnaire["id"], path, text)
            statements = libraries.get(match["library"])
            assert statements is not None, (path, match["library"])
            define = statements.get(match["define"])
            assert define is not None, (path, text)
            assert define["context"] == "Patient", (path, text)
            assert define.get("type") != "FunctionDef", (path, text)


@pytest.mark.requirement("DTR", "spec-92")
def test_cql_is_cql_1_5() -> None:
    """The libraries translate without error, to exactly the committed ELM, with the official
    translator at its CQL compatibility level, which is 1.5 (translate.mjs does not change it)."""
    node_ready()
    probe = subprocess.run(
        [
            "node",
            "--input-type=module",
            "-e",
            'const { CqlCompilerOptions } = await import("@cqframework/cql/cql-to-elm");'
            "process.stderr.write(String(new CqlCompilerOptions().compatibilityLevel));",
        ],
        cwd=TOOLS,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr.decode()[-2000:]
    assert probe.stderr.decode().strip().endswith("1.5")
    script = (TOOLS / "translate.mjs").read_text(encoding="utf-8")
    assert "CompatibilityLevel" not in script and "compatibilityLevel" not in script
    files = sorted(CONTENT.glob("*/*.cql"))
    result = check_translation(files)
    assert result.returncode == 0, result.stderr.decode()[-4000:]
    for library in content().libraries.values():
        assert library.elm["library"]["schemaIdentifier"] == {
            "id": "urn:hl7-org:elm",
            "version": "r1",
        }


def _profile_elements(name: str) -> list[dict[str, Any]]:
    with tarfile.open(FHIR_PACKAGES / "davinci_dtr_2.0.1.tgz") as package:
        member = package.extractfile(f"package/StructureDefinition-{name}.json")
        assert member is not None
        definition: dict[str, Any] = orjson.loads(member.read())
    return list(definition["snapshot"]["element"])


#: Descriptive metadata: no DTR client needs it to render the form or collect the answers.
METADATA = {"resourceType", "id", "meta", "name", "date", "publisher", "description", "purpose"}
#: Backbone elements whose own children are profiled (everything else is a data type value).
BACKBONES = {"Questionnaire.item", "Questionnaire.item.enableWhen", "Questionnaire.item.initial"}


def _unsupported(
    node: dict[str, Any], path: str, supported: set[str], extensions: dict[str, set[str]]
) -> Iterator[str]:
    for key, value in node.items():
        if path == "Questionnaire" and key in METADATA:
            continue
        if key == "extension":
            for ext in value:
                if ext["url"] not in extensions.get(path, set()):
                    yield f"{path}.extension[{ext['url']}]"
            continue
        element = f"{path}.{key}"
        choice = re.sub(r"(answer|value|initial|enableWhen)[A-Z]\w*$", r"\1[x]", element)
        if element not in supported and choice not in supported:
            yield element
            continue
        child = "Questionnaire.item" if key == "item" else element
        if child in BACKBONES:
            for entry in value if isinstance(value, list) else [value]:
                yield from _unsupported(entry, child, supported, extensions)


@pytest.mark.requirement("DTR", "spec-21")
@pytest.mark.parametrize(
    "questionnaire",
    [q for q in QUESTIONNAIRES if q.get("item")],
    ids=lambda q: str(q["id"]),
)
def test_forms_use_only_must_support_elements(questionnaire: dict[str, Any]) -> None:
    """Everything the standard forms use to collect information (elements, at any item depth,
    and extensions) is mandatory or mustSupport in `dtr-std-questionnaire`, so a DTR client that
    ignores the rest collects the same answers; only descriptive metadata is outside it."""
    supported: set[str] = set()
    extensions: dict[str, set[str]] = {}
    for element in _profile_elements("dtr-std-questionnaire"):
        if not (element.get("mustSupport") or element.get("min", 0) >= 1):
            continue
        path, _, _slice = element["id"].partition(":")
        if path.endswith(".extension") and _slice and "." not in _slice:
            for kind in element.get("type") or []:
                for url in kind.get("profile") or []:
                    extensions.setdefault(path[: -len(".extension")], set()).add(url)
        elif not _slice:
            supported.add(path)
    assert "Questionnaire.item.linkId" in supported
    assert extensions["Questionnaire"] and extensions["Questionnaire.item"]
    problems = list(_unsupported(questionnaire, "Questionnaire", supported, extensions))
    assert not problems, problems


@pytest.mark.requirement("DTR", "spec-22")
def test_clinical_questions_end_with_a_clinical_done_display() -> None:
    """Every form collects clinical data first and closes it with a display item saying the
    clinical questions are complete (anything administrative could only follow it); the
    adaptive form's last step is the same display item."""
    published = content()
    for questionnaire in QUESTIONNAIRES:
        items = questionnaire.get("item") or []
        if not items:
            continue
        last = items[-1]
        assert last["type"] == "display", questionnaire["id"]
        assert last["text"].startswith("The clinical questions are complete"), questionnaire["id"]
        assert all(i["type"] != "display" for i in items[:-1]), questionnaire["id"]
    flows = load_flows(CONTENT, published).flows
    assert flows
    for flow in flows.values():
        closing = flow.steps[-1]
        bank = {i["linkId"]: i for i in flow.bank["item"]}
        assert [bank[link]["type"] for link in closing.items] == ["display"], flow.url
