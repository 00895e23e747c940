"""The payer's documentation content, read once from the topic folders (`questionnaires/`):

- `<folder>/Questionnaire-*.json`: DTR Questionnaires (standard and adaptive-search forms);
- `<folder>/ValueSet-*.json`: the value sets they and their CQL use (enumerated concepts);
- `<folder>/<Library>.cql` with the ELM `<Library>.json` translated from it (`make elm`): each pair
  becomes a FHIR Library holding both (DTR oper-13, spec-95, spec-99), whose `relatedArtifact`
  lists the libraries it includes and the value sets it uses, version-specific (oper-16);
- `<folder>/adaptive.yaml`: the step plan of an adaptive form (see `app.dtr.adaptive`).

`_shared/` (no topic.yaml, so the rules loader skips it) holds FHIRHelpers and the common library.
Content that does not hang together (a cqf-library or answerValueSet naming nothing, ELM that
does not match its CQL) raises `DtrContentError` naming the file, so start-up stops with a message
the payer's analyst can act on.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from app.fhir.models import check_resource
from app.fhir.outcomes import FhirError

CANONICAL_BASE = "http://greenlight.example.org/fhir"
CQF_LIBRARY = "http://hl7.org/fhir/StructureDefinition/cqf-library"
ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
LIBRARY_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/library-type",
            "code": "logic-library",
            "display": "Logic Library",
        }
    ]
}
#: Value sets at or above this size are not expanded inside packages (DTR oper-15: under 40).
INLINE_EXPANSION_LIMIT = 40

_LIBRARY_HEADER = re.compile(r"^\s*library\s+\"?(\w+)\"?\s+version\s+'([^']+)'", re.MULTILINE)


class DtrContentError(Exception):
    """Documentation content that cannot be served; the message names the file and the problem."""

    def __init__(self, source: Path, message: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


def split_canonical(canonical: str) -> tuple[str, str | None]:
    """`url|version` -> (url, version); a canonical without a version gives (url, None)."""
    url, _, version = canonical.partition("|")
    return url, version or None


@dataclass(frozen=True)
class LibraryContent:
    """A CQL library: its FHIR Library resource and the ELM it carries (for tests and tools)."""

    name: str
    version: str
    resource: dict[str, Any]
    elm: dict[str, Any]
    source: Path

    @property
    def url(self) -> str:
        return str(self.resource["url"])

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    def dependencies(self) -> Iterator[tuple[str, str]]:
        """(resource type, versioned canonical) of every depends-on relatedArtifact."""
        for artifact in self.resource.get("relatedArtifact") or []:
            if artifact.get("type") == "depends-on" and artifact.get("resource"):
                kind = "ValueSet" if "/ValueSet/" in artifact["resource"] else "Library"
                yield kind, str(artifact["resource"])


@dataclass
class DtrContent:
    """Every Questionnaire, Library and ValueSet the payer publishes, by canonical URL."""

    questionnaires: dict[str, dict[str, Any]] = field(default_factory=dict)
    libraries: dict[str, LibraryContent] = field(default_factory=dict)  # by url
    valuesets: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # canonical url -> file
    _codes: dict[str, frozenset[tuple[str, str]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def questionnaire(self, canonical: str) -> dict[str, Any] | None:
        """The Questionnaire a (possibly versioned) canonical names, or None."""
        url, version = split_canonical(canonical)
        found = self.questionnaires.get(url)
        if found is None or (version and found.get("version") != version):
            return None
        return found

    def library(self, canonical: str) -> LibraryContent | None:
        url, version = split_canonical(canonical)
        found = self.libraries.get(url)
        if found is None or (version and found.version != version):
            return None
        return found

    def codes(self, canonical: str) -> frozenset[tuple[str, str]] | None:
        """(system, code) of every active concept of the value set a canonical names (what its
        expansion holds, whatever the day), or None when it is not published. Computed once."""
        found = self._codes.get(canonical)
        if found is None:
            valueset = self.valueset(canonical)
            if valueset is None:
                return None
            found = frozenset((c["system"], c["code"]) for c in active_concepts(valueset))
            self._codes[canonical] = found
        return found

    def library_named(self, name: str) -> LibraryContent | None:
        return next((lib for lib in self.libraries.values() if lib.name == name), None)

    def valueset(self, canonical: str) -> dict[str, Any] | None:
        url, version = split_canonical(canonical)
        found = self.valuesets.get(url)
        if found is None or (version and found.get("version") != version):
            return None
        return found

    def libraries_for(self, questionnaire: dict[str, Any]) -> list[LibraryContent]:
        """The Questionnaire's cqf-library Libraries and, recursively, what they depend on
        (DTR oper-12), each once, the directly referenced ones first."""
        ordered: list[LibraryContent] = []
        pending = [
            str(ext["valueCanonical"])
            for ext in questionnaire.get("extension") or []
            if ext.get("url") == CQF_LIBRARY and ext.get("valueCanonical")
        ]
        while pending:
            library = self.library(pending.pop(0))
            if library is None or library in ordered:
                continue
            ordered.append(library)
            pending.extend(c for kind, c in library.dependencies() if kind == "Library")
        return ordered

    def valuesets_for(
        self, questionnaire: dict[str, Any], libraries: list[LibraryContent]
    ) -> list[dict[str, Any]]:
        """Every ValueSet the Questionnaire's items or its Libraries use (DTR oper-14), once."""
        wanted = [
            str(item["answerValueSet"])
            for item in walk_items(questionnaire.get("item"))
            if item.get("answerValueSet")
        ]
        wanted += [c for lib in libraries for kind, c in lib.dependencies() if kind == "ValueSet"]
        found: list[dict[str, Any]] = []
        for canonical in wanted:
            valueset = self.valueset(canonical)
            if valueset is not None and valueset not in found:
                found.append(valueset)
        return found

    def resources(self) -> list[dict[str, Any]]:
        """Every resource, for loading into the FHIR store (`greenlight demo-data`)."""
        return [
            *self.questionnaires.values(),
            *(lib.resource for lib in self.libraries.values()),
            *self.valuesets.values(),
        ]


def walk_items(items: Any) -> Iterator[dict[str, Any]]:
    """Every Questionnaire (or QuestionnaireResponse) item at any depth, parents first."""
    for item in items or []:
        if isinstance(item, dict):
            yield item
            yield from walk_items(item.get("item"))
            for answer in item.get("answer") or []:
                if isinstance(answer, dict):
                    yield from walk_items(answer.get("item"))


def active_concepts(valueset: dict[str, Any]) -> list[dict[str, Any]]:
    """The expansion's `contains`: active codes only (DTR oper-5; the payer's value sets
    enumerate their concepts, and an `inactive` concept property drops a code)."""
    contains = []
    for include in (valueset.get("compose") or {}).get("include") or []:
        for concept in include.get("concept") or []:
            properties = {p.get("code"): p for p in concept.get("property") or []}
            if (properties.get("inactive") or {}).get("valueBoolean") is True:
                continue
            entry = {"system": include["system"], "code": concept["code"]}
            if include.get("version"):
                entry["version"] = include["version"]
            if concept.get("display"):
                entry["display"] = concept["display"]
            contains.append(entry)
    return contains


def expand(valueset: dict[str, Any], today: date) -> dict[str, Any]:
    """The value set with an expansion as of `today` (`active_concepts`)."""
    contains = active_concepts(valueset)
    expanded = dict(valueset)
    expanded["expansion"] = {
        "identifier": f"urn:uuid:{_expansion_id(valueset, today)}",
        "timestamp": today.isoformat(),
        "total": len(contains),
        "parameter": [{"name": "activeOnly", "valueBoolean": True}],
        "contains": contains,
    }
    return expanded


def _expansion_id(valueset: dict[str, Any], today: date) -> str:
    key = f"{valueset.get('url')}|{valueset.get('version')}|{today.isoformat()}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DtrContentError(path, f"not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise DtrContentError(path, "must hold a JSON object")
    return loaded


def _checked(resource: dict[str, Any], path: Path, resource_type: str) -> dict[str, Any]:
    try:
        return check_resource(resource, expected_type=resource_type)
    except FhirError as exc:
        raise DtrContentError(path, f"not a valid {resource_type}: {exc}") from None


def _description(cql: str) -> str:
    """The library's leading comment block, as one paragraph."""
    lines = []
    for line in cql.splitlines():
        stripped = line.strip()
        if not stripped.startswith("//"):
            break
        lines.append(stripped.lstrip("/").strip())
    return " ".join(" ".join(lines).split())


def build_library(cql_path: Path, base: str = CANONICAL_BASE) -> LibraryContent:
    """The FHIR Library for `<name>.cql` and its translated `<name>.json`."""
    elm_path = cql_path.with_suffix(".json")
    cql = cql_path.read_text(encoding="utf-8")
    header = _LIBRARY_HEADER.search(cql)
    if header is None:
        raise DtrContentError(cql_path, "no `library <Name> version '<version>'` declaration")
    name, version = header.group(1), header.group(2)
    if not elm_path.is_file():
        raise DtrContentError(cql_path, f"no translated ELM {elm_path.name}: run `make elm`")
    elm = _read_json(elm_path)
    identifier = (elm.get("library") or {}).get("identifier") or {}
    if identifier.get("id") != name or identifier.get("version") != version:
        raise DtrContentError(
            elm_path, f"holds {identifier} but the CQL declares {name} {version}: run `make elm`"
        )
    library = elm["library"]
    related: list[dict[str, Any]] = []
    for include in (library.get("includes") or {}).get("def") or []:
        path = include.get("path")
        related.append(
            {
                "type": "depends-on",
                "display": f"{path} {include.get('version')}",
                "resource": f"{base}/Library/{path}|{include.get('version')}",
            }
        )
    for valueset in (library.get("valueSets") or {}).get("def") or []:
        canonical = str(valueset["id"])
        if valueset.get("version"):
            canonical += f"|{valueset['version']}"
        related.append(
            {"type": "depends-on", "display": valueset.get("name"), "resource": canonical}
        )
    compact_elm = orjson.dumps(elm)
    resource: dict[str, Any] = {
        "resourceType": "Library",
        "id": name,
        "url": f"{base}/Library/{name}",
        "version": version,
        "name": name,
        "title": name,
        "status": "active",
        "type": LIBRARY_TYPE,
        "date": "2025-06-01",
        "publisher": "Greenlight Health Plan",
        "description": _description(cql) or f"CQL library {name}",
        "relatedArtifact": related,
        "content": [
            {"contentType": "text/cql", "data": base64.b64encode(cql.encode()).decode()},
            {"contentType": "application/elm+json", "data": base64.b64encode(compact_elm).decode()},
        ],
    }
    if not related:
        resource.pop("relatedArtifact")
    return LibraryContent(name, version, _checked(resource, cql_path, "Library"), elm, cql_path)


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_content(root: Path) -> DtrContent:
    """Every Questionnaire, Library and ValueSet under `root`, checked to hang together."""
    content = DtrContent()

    def claim(url: str, path: Path) -> None:
        if url in content.sources:
            raise DtrContentError(path, f"{url} is also defined by {content.sources[url]}")
        content.sources[url] = path

    if not root.is_dir():
        raise DtrContentError(root, "the documentation content directory does not exist")
    for folder in _folders(root):
        for path in sorted(folder.glob("ValueSet-*.json")):
            valueset = _checked(_read_json(path), path, "ValueSet")
            claim(str(valueset["url"]), path)
            content.valuesets[str(valueset["url"])] = valueset
        for path in sorted(folder.glob("Questionnaire-*.json")):
            questionnaire = _checked(_read_json(path), path, "Questionnaire")
            claim(str(questionnaire["url"]), path)
            content.questionnaires[str(questionnaire["url"])] = questionnaire
        for path in sorted(folder.glob("*.cql")):
            library = build_library(path)
            claim(library.url, path)
            content.libraries[library.url] = library
    _check_references(content)
    return content


def _check_references(content: DtrContent) -> None:
    names: dict[str, Path] = {}
    for library in content.libraries.values():
        if library.name in names:  # DTR spec-98: library names are unique
            raise DtrContentError(library.source, f"library name {library.name} is used twice")
        names[library.name] = library.source
        for kind, canonical in library.dependencies():
            found = (
                content.library(canonical) is not None
                if kind == "Library"
                else content.valueset(canonical) is not None
            )
            if not found:
                raise DtrContentError(library.source, f"depends on unknown {kind} {canonical}")
    for url, questionnaire in content.questionnaires.items():
        source = content.sources[url]
        for ext in questionnaire.get("extension") or []:
            if ext.get("url") == CQF_LIBRARY and content.library(ext["valueCanonical"]) is None:
                raise DtrContentError(source, f"cqf-library {ext['valueCanonical']} is unknown")
        for item in walk_items(questionnaire.get("item")):
            if item.get("answerValueSet") and content.valueset(item["answerValueSet"]) is None:
                raise DtrContentError(
                    source,
                    f"item {item.get('linkId')}: unknown answerValueSet {item['answerValueSet']}",
                )


@lru_cache(maxsize=8)
def content_for(root: Path) -> DtrContent:
    """`load_content(root)`, loaded once per process (the content is read-only at run time)."""
    return load_content(root)


def is_adaptive(questionnaire: dict[str, Any]) -> bool:
    return any(
        ext.get("url") == ADAPTIVE and ext.get("valueBoolean", True) is not False
        for ext in questionnaire.get("extension") or []
    )
