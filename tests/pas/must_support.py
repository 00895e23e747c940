"""Inferno's must-support check over pooled responses, read from the kit's generated metadata.

`cross_suite/generated/<version>/<profile>/metadata.yml` lists, per PAS profile, the
must-support elements, extensions (path and URL) and slices (discriminators). Inferno passes a
profile when every one of them appears in at least one resource of that type across all the
responses of a run; `missing_must_supports` answers what would not.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import yaml

from tests.pas.conftest import PAS_KIT


@lru_cache(maxsize=64)
def must_supports(version: str, profile: str) -> dict[str, Any]:
    path = PAS_KIT / "cross_suite" / "generated" / f"v{version}" / profile / "metadata.yml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[str, Any] = loaded[":must_supports"]
    return found


def values(node: Any, path: str) -> Iterator[Any]:
    """Every value at a dotted path (lists flattened; `x[x]` matches any `x<Type>`)."""
    if isinstance(node, list):
        for item in node:
            yield from values(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if not isinstance(node, dict):
        return
    head, _, rest = path.partition(".")
    if head.endswith("[x]"):
        stem = head[:-3]
        for key, value in node.items():
            if key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper():
                yield from values(value, rest)
    else:
        yield from values(node.get(head), rest)


def _has_slice(resource: dict[str, Any], slice_: dict[str, Any]) -> bool:
    discriminator = slice_[":discriminator"]
    kind = discriminator[":type"]
    path = slice_[":path"]
    if kind == "patternIdentifier":
        return any(v.get("system") == discriminator[":system"] for v in values(resource, path))
    if kind == "type" and path.endswith("[x]"):
        return f"{path[:-3]}{discriminator[':code']}" in resource
    if kind == "type":
        inner = discriminator.get(":path") or ""
        return any(
            isinstance(v, dict) and v.get("resourceType") == discriminator[":code"]
            for v in values(resource, f"{path}.{inner}" if inner else path)
        )
    raise AssertionError(f"unhandled discriminator {discriminator}")


def missing_must_supports(version: str, profile: str, resources: list[dict[str, Any]]) -> list[str]:
    """The must-support elements of `profile` that none of `resources` shows."""
    ms = must_supports(version, profile)
    missing = []
    for element in ms[":elements"]:
        if not any(any(True for _ in values(r, element[":path"])) for r in resources):
            missing.append(element[":path"])
    for extension in ms[":extensions"]:
        if not any(
            any(v.get("url") == extension[":url"] for v in values(r, extension[":path"]))
            for r in resources
        ):
            missing.append(f"{extension[':path']}:{extension[':url'].rsplit('/', 1)[1]}")
    for slice_ in ms[":slices"]:
        if not any(_has_slice(r, slice_) for r in resources):
            missing.append(slice_[":slice_id"])
    return missing
