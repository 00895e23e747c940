"""What the PAS profiles mark as mandatory or must-support, read from the IG packages.

`without_optional_elements(bundle, version)` keeps, in every entry whose declared profile is a
PAS profile, only the elements with min >= 1 or mustSupport (descending into BackboneElements
such as `Claim.item`, keeping extensions only where a must-support or mandatory slice declares
their URL), then drops the entries nothing references any more. `pas_extensions(version)` lists
the extension URLs the PAS package defines.
"""

from __future__ import annotations

import copy
import tarfile
from functools import lru_cache
from typing import Any

import orjson

from app.pas.bundle import RequestBundle
from tests.conftest import FHIR_PACKAGES

PACKAGES = {"2.0.1": "davinci_pas_2.0.1.tgz", "2.2.1": "davinci_pas_2.2.1.tgz"}
Elements = dict[str, list[dict[str, Any]]]


@lru_cache(maxsize=4)
def _definitions(version: str) -> dict[str, dict[str, Any]]:
    """The package's StructureDefinitions by canonical URL."""
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(FHIR_PACKAGES / PACKAGES[version]) as archive:
        for member in archive.getmembers():
            name = member.name
            if name.startswith("package/StructureDefinition-") and name.endswith(".json"):
                handle = archive.extractfile(member)
                assert handle is not None
                definition = orjson.loads(handle.read())
                found[str(definition["url"])] = definition
    return found


def pas_extensions(version: str) -> set[str]:
    """The extension URLs the PAS package defines."""
    return {url for url, sd in _definitions(version).items() if sd.get("type") == "Extension"}


@lru_cache(maxsize=64)
def _elements(version: str, profile: str) -> Elements | None:
    definition = _definitions(version).get(profile.split("|", 1)[0])
    if definition is None or definition.get("kind") != "resource":
        return None
    elements: Elements = {}
    for element in definition["snapshot"]["element"]:
        elements.setdefault(str(element["path"]), []).append(element)
    return elements


def _wanted(definitions: list[dict[str, Any]]) -> bool:
    return any(d.get("mustSupport") or int(d.get("min", 0)) >= 1 for d in definitions)


def _wanted_extensions(definitions: list[dict[str, Any]]) -> set[str]:
    urls: set[str] = set()
    for definition in definitions:
        if definition.get("sliceName") and _wanted([definition]):
            for type_ in definition.get("type", []):
                urls.update(str(p).split("|", 1)[0] for p in type_.get("profile", []))
    return urls


def _path(elements: Elements, parent: str, key: str) -> str | None:
    if f"{parent}.{key}" in elements:
        return f"{parent}.{key}"
    depth = parent.count(".") + 1
    for path in elements:
        if path.startswith(f"{parent}.") and path.endswith("[x]") and path.count(".") == depth:
            stem = path[len(parent) + 1 : -3]
            if key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper():
                return path
    return None


def _strip(node: Any, elements: Elements, path: str) -> Any:
    if isinstance(node, list):
        return [_strip(value, elements, path) for value in node]
    if not isinstance(node, dict):
        return node
    kept: dict[str, Any] = {}
    for key, value in node.items():
        if "." not in path and key in ("resourceType", "id", "meta"):
            kept[key] = value
            continue
        name = key.removeprefix("_")
        if name in ("extension", "modifierExtension"):
            urls = _wanted_extensions(elements.get(f"{path}.{name}", []))
            chosen = [e for e in value if isinstance(e, dict) and e.get("url") in urls]
            if chosen:
                kept[key] = chosen
            continue
        element = _path(elements, path, name)
        if element is None or not _wanted(elements[element]):
            continue
        backbone = any(
            t.get("code") == "BackboneElement" for d in elements[element] for t in d.get("type", [])
        )
        kept[key] = _strip(value, elements, element) if backbone and name == key else value
    return kept


def without_optional_elements(bundle: dict[str, Any], version: str) -> dict[str, Any]:
    """The Bundle reduced to what the PAS profiles make mandatory or must-support."""
    changed = copy.deepcopy(bundle)
    for entry in changed["entry"]:
        resource = entry["resource"]
        profiles = (resource.get("meta") or {}).get("profile") or []
        elements = _elements(version, str(profiles[0])) if profiles else None
        if elements is not None:
            entry["resource"] = _strip(resource, elements, str(resource["resourceType"]))
    while True:  # entries only optional elements pointed at are no longer part of the request
        request = RequestBundle.stored(changed)
        reached = {e.index for e in request.reachable()}
        if len(reached) == len(changed["entry"]):
            return changed
        changed["entry"] = [e for i, e in enumerate(changed["entry"]) if i in reached]


def element_count(node: Any) -> int:
    """How many JSON properties a value holds, at any depth."""
    if isinstance(node, dict):
        return len(node) + sum(element_count(v) for v in node.values())
    if isinstance(node, list):
        return sum(element_count(v) for v in node)
    return 0
