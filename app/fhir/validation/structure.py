"""Compiled StructureDefinitions: the snapshot turned once into a tree the validator walks.

Each snapshot element becomes an `ElementDef` with its children keyed by name and its slices
listed under the element that declares the slicing. The tree is built from element ids
(`Claim.supportingInfo:PatientEvent.timing[x]:timingDate`), so slices, re-slices and slices of
choice types all hang where they apply. Nothing here reads instances; see `validator.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.fhir.packages import FhirPackage

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
BEST_PRACTICE_EXT = "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"

SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}

#: FHIR R4 primitive types and the JSON type each one is written as.
PRIMITIVE_JSON: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "unsignedInt": (int,),
    "positiveInt": (int,),
    "decimal": (int, float),
    "string": (str,),
    "code": (str,),
    "id": (str,),
    "markdown": (str,),
    "uri": (str,),
    "url": (str,),
    "canonical": (str,),
    "oid": (str,),
    "uuid": (str,),
    "base64Binary": (str,),
    "instant": (str,),
    "date": (str,),
    "dateTime": (str,),
    "time": (str,),
    "xhtml": (str,),
}


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class TypeRef:
    """One allowed type of an element, with its profiles and (for references) targets."""

    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()

    @property
    def is_primitive(self) -> bool:
        return self.code in PRIMITIVE_JSON


@dataclass(frozen=True)
class Discriminator:
    type: str
    path: str


@dataclass(frozen=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str
    ordered: bool


@dataclass(frozen=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str | None
    source: str | None
    best_practice: bool = False


@dataclass(frozen=True)
class Binding:
    strength: str
    value_set: str | None


@dataclass(eq=False)
class ElementDef:
    """One snapshot element, linked to its children and slices."""

    id: str
    path: str
    name: str
    slice_name: str | None
    min: int
    max: int | None
    is_array: bool
    types: tuple[TypeRef, ...]
    choice: bool
    fixed: Any = None
    pattern: Any = None
    binding: Binding | None = None
    constraints: tuple[Constraint, ...] = ()
    content_reference: str | None = None
    slicing: Slicing | None = None
    children: dict[str, ElementDef] = field(default_factory=dict)
    slices: list[ElementDef] = field(default_factory=list)
    structure: CompiledStructure | None = field(default=None, repr=False)
    #: For a slice: the element it slices (whose children are complete in any snapshot).
    sliced_from: ElementDef | None = field(default=None, repr=False)
    _keys: dict[str, tuple[ElementDef, TypeRef | None]] | None = field(default=None, repr=False)
    _required: tuple[ElementDef, ...] | None = field(default=None, repr=False)

    def required_children(self) -> tuple[ElementDef, ...]:
        if self._required is None:
            self._required = tuple(c for c in self.children.values() if c.min > 0)
        return self._required

    @property
    def max_label(self) -> str:
        return "*" if self.max is None else str(self.max)

    def type_for(self, code: str) -> TypeRef | None:
        for t in self.types:
            if t.code == code:
                return t
        return None

    def json_keys(self) -> dict[str, tuple[ElementDef, TypeRef | None]]:
        """JSON property name -> (child, type) for this element's children (choice expanded)."""
        if self._keys is None:
            keys: dict[str, tuple[ElementDef, TypeRef | None]] = {}
            for child in self.children.values():
                if child.choice:
                    for t in child.types:
                        keys[child.name + upper_first(t.code)] = (child, t)
                else:
                    keys[child.name] = (child, child.types[0] if child.types else None)
            self._keys = keys
        return self._keys


@dataclass(eq=False)
class CompiledStructure:
    """A StructureDefinition ready for validation."""

    url: str
    version: str | None
    name: str
    type: str
    kind: str
    abstract: bool
    derivation: str | None
    base_definition: str | None
    root: ElementDef
    by_id: dict[str, ElementDef]
    package: FhirPackage | None

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def element_by_path(self, path: str) -> ElementDef | None:
        """The unsliced element with this path (for `contentReference`)."""
        return self.by_id.get(path)


def _type_code(raw: dict[str, Any]) -> str:
    code = str(raw.get("code", ""))
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in raw.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueUri") or SYSTEM_TYPES.get(code))
        return SYSTEM_TYPES.get(code, "string")
    return code


def _types(raw_types: list[dict[str, Any]]) -> tuple[TypeRef, ...]:
    return tuple(
        TypeRef(
            code=_type_code(t),
            profiles=tuple(t.get("profile", ())),
            target_profiles=tuple(t.get("targetProfile", ())),
        )
        for t in raw_types
    )


def _split_id(element_id: str) -> list[str]:
    """Id segments: `A.b:s.c` -> [`A`, `b:s`, `c`] (slice names may hold `/`)."""
    return element_id.split(".")


def _max(value: str | None) -> int | None:
    if value is None or value == "*":
        return None
    return int(value)


def _prefixed(raw: dict[str, Any], prefix: str) -> Any:
    for key, value in raw.items():
        if key.startswith(prefix) and key != prefix:
            return value
    return None


def _constraints(raw: dict[str, Any]) -> tuple[Constraint, ...]:
    found: list[Constraint] = []
    for c in raw.get("constraint", ()):
        best = any(
            e.get("url") == BEST_PRACTICE_EXT and e.get("valueBoolean")
            for e in c.get("extension", ())
        )
        found.append(
            Constraint(
                key=str(c.get("key", "?")),
                severity=str(c.get("severity", "error")),
                human=str(c.get("human", "")),
                expression=c.get("expression"),
                source=c.get("source"),
                best_practice=best,
            )
        )
    return tuple(found)


def _element(raw: dict[str, Any]) -> ElementDef:
    path = str(raw["path"])
    last = path.rsplit(".", 1)[-1]
    choice = last.endswith("[x]")
    name = last[:-3] if choice else last
    base = raw.get("base") or {}
    base_max = base.get("max", raw.get("max", "1"))
    binding_raw = raw.get("binding")
    binding = (
        Binding(str(binding_raw.get("strength")), binding_raw.get("valueSet"))
        if binding_raw
        else None
    )
    slicing_raw = raw.get("slicing")
    slicing = None
    if slicing_raw:
        slicing = Slicing(
            discriminators=tuple(
                Discriminator(str(d["type"]), str(d["path"]))
                for d in slicing_raw.get("discriminator", ())
            ),
            rules=str(slicing_raw.get("rules", "open")),
            ordered=bool(slicing_raw.get("ordered", False)),
        )
    content_reference = raw.get("contentReference")
    if content_reference:
        content_reference = content_reference.split("#", 1)[-1]
    return ElementDef(
        id=str(raw.get("id") or path),
        path=path,
        name=name,
        slice_name=raw.get("sliceName"),
        min=int(raw.get("min", 0)),
        max=_max(raw.get("max")),
        is_array=base_max != "1" and base_max != "0",
        types=_types(raw.get("type", [])),
        choice=choice,
        fixed=_prefixed(raw, "fixed"),
        pattern=_prefixed(raw, "pattern"),
        binding=binding,
        constraints=_constraints(raw),
        content_reference=content_reference,
        slicing=slicing,
    )


def compile_structure(sd: dict[str, Any], package: FhirPackage | None = None) -> CompiledStructure:
    """Build the element tree of a StructureDefinition's snapshot."""
    snapshot = (sd.get("snapshot") or {}).get("element") or []
    if not snapshot:
        raise ValueError(f"StructureDefinition {sd.get('url')} has no snapshot")
    by_id: dict[str, ElementDef] = {}
    root: ElementDef | None = None
    structure = CompiledStructure(
        url=str(sd.get("url")),
        version=sd.get("version"),
        name=str(sd.get("name", "")),
        type=str(sd.get("type", "")),
        kind=str(sd.get("kind", "")),
        abstract=bool(sd.get("abstract", False)),
        derivation=sd.get("derivation"),
        base_definition=sd.get("baseDefinition"),
        root=None,  # type: ignore[arg-type]  # set below
        by_id=by_id,
        package=package,
    )
    for raw in snapshot:
        element = _element(raw)
        element.structure = structure
        by_id[element.id] = element
        if root is None:
            root = element
            continue
        segments = _split_id(element.id)
        last = segments[-1]
        if ":" in last:
            base_name, _, slice_name = last.partition(":")
            if "/" in slice_name:  # re-slice: slice of the parent slice
                parent_slice = slice_name.rsplit("/", 1)[0]
                owner_id = ".".join([*segments[:-1], f"{base_name}:{parent_slice}"])
            else:
                owner_id = ".".join([*segments[:-1], base_name])
            owner = by_id.get(owner_id)
            if owner is not None:
                owner.slices.append(element)
                element.sliced_from = owner
            continue
        parent = by_id.get(".".join(segments[:-1]))
        if parent is not None:
            parent.children[element.name] = element
    assert root is not None
    structure.root = root
    return structure
