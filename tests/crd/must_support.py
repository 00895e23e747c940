"""A resource cut down to what a CRD 2.0.1 profile requires or marks mustSupport (CRD conf-8,
hook-22): the test proving that Greenlight's answers need nothing more.

Read from the profile's snapshot (the CRD 2.0.1 package in ../shared/fhir-packages): an element
is kept when it has min >= 1 or mustSupport; backbone elements are cut the same way inside;
extensions are kept when a mustSupport extension slice names their URL; datatype values are kept
whole. `resourceType` and `id` are always kept: hook contexts name resources by `Type/id`
(selections, the coverage reference of coverage-information), so an id is never optional there.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from tests.support.crd_checks import CRD_PACKAGE

Element = Mapping[str, Any]


@lru_cache(maxsize=1)
def crd_profiles() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(CRD_PACKAGE) as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.name.count("/") != 1 or not name.startswith("StructureDefinition-"):
                continue
            handle = archive.extractfile(member)
            if handle is not None:
                definition = json.loads(handle.read().decode("utf-8-sig"))
                found[str(definition["url"])] = definition
    return found


def _wanted(element: Element) -> bool:
    return bool(element.get("mustSupport")) or int(element.get("min", 0)) >= 1


class _Profile:
    def __init__(self, url: str) -> None:
        snapshot = crd_profiles()[url]["snapshot"]["element"]
        self.elements: dict[str, Element] = {e["path"]: e for e in snapshot if ":" not in e["id"]}
        self.extension_urls: dict[str, set[str]] = {}
        for element in snapshot:
            if ":" in element["id"] and element["path"].endswith(".extension") and _wanted(element):
                parent = element["path"].rsplit(".", 1)[0]
                for kind in element.get("type") or []:
                    self.extension_urls.setdefault(parent, set()).update(kind.get("profile") or [])

    def element(self, parent: str, key: str) -> Element | None:
        exact = self.elements.get(f"{parent}.{key}")
        if exact is not None:
            return exact
        for path, element in self.elements.items():  # a choice: occurrence[x] -> occurrenceDateTime
            if path.startswith(f"{parent}.") and path.endswith("[x]"):
                stem = path[len(parent) + 1 : -3]
                if "." not in stem and key.startswith(stem) and key[len(stem) :][:1].isupper():
                    return element
        return None

    def prune(self, node: Mapping[str, Any], parent: str) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("extension", "modifierExtension"):
                urls = self.extension_urls.get(parent, set())
                extensions = [e for e in value if isinstance(e, dict) and e.get("url") in urls]
                if extensions:
                    kept[key] = extensions
                continue
            element = self.element(parent, key)
            if element is None or not _wanted(element):
                continue
            kinds = {t.get("code") for t in element.get("type") or []}
            if kinds & {"BackboneElement", "Element"} and self._has_children(element["path"]):
                if isinstance(value, list):
                    items = [self.prune(v, element["path"]) for v in value]
                    value = [item for item in items if item]
                else:
                    value = self.prune(value, element["path"])
            if value or value is False or value == 0:  # a backbone left empty goes (ele-1)
                kept[key] = value
        return kept

    def _has_children(self, path: str) -> bool:
        return any(p.startswith(f"{path}.") for p in self.elements)


def must_support_only(resource: Mapping[str, Any], profile_url: str) -> dict[str, Any]:
    """`resource` with only the elements `profile_url` requires or marks mustSupport."""
    profile = _Profile(profile_url)
    root = str(resource["resourceType"])
    pruned = {"resourceType": root}
    if "id" in resource:
        pruned["id"] = resource["id"]
    pruned.update(profile.prune({k: v for k, v in resource.items() if k != "id"}, root))
    return pruned
