"""A quick structural check of FHIR R4 JSON, read from the R4B models' own field metadata.

`app.fhir.models.check_resource` validates through fhir.resources (pydantic), which builds a model
object per element: about 1 ms for a QuestionnaireResponse with a handful of answers. `conforms`
walks the JSON instead, against a shape read once per model class from the same classes (element
names, lists, choice groups `value[x]`, required elements), and checks every primitive with the
very pydantic type that model field uses (the same patterns, ranges and calendar checks). A few
microseconds per element; each element remembers up to `REMEMBERED_VALUES` primitive values it
has accepted (code systems, codes, references recur in every request) and accepts them again
without calling pydantic.

It only ever *accepts*. Whatever it accepts the models accept too; it is stricter wherever that is
simpler: no nulls, no empty arrays or objects, no `_element` primitive extensions, no
`fhir_comments`, no contained resources, booleans only as JSON booleans. For anything else it
answers False and `app.fhir.models.check_resource` (which tries this first) runs the models,
which accept or raise the 400 naming the element. So every input gets the models' verdict; only
the common, valid case is faster.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from app.fhir.model_classes import model_class

REMEMBERED_VALUES = 256

#: Model classes whose JSON is not walked (a resource of any type: `contained`, Bundle entries).
_ANY_RESOURCE = frozenset({"Resource", "DomainResource"})


@dataclass(frozen=True)
class _Element:
    """What one JSON key of an element may hold."""

    many: bool  # a JSON array
    group: str | None  # the choice group (`value` for `valueString`, ...)
    boolean: bool = False
    primitive: TypeAdapter[Any] | None = None
    model: type[BaseModel] | None = None  # a complex type, walked with its own shape
    accepted: set[tuple[type, Any]] = dataclass_field(
        default_factory=set, compare=False, hash=False
    )


@dataclass(frozen=True)
class _Shape:
    """The keys an element of one model class may have."""

    elements: dict[str, _Element]
    required: tuple[str, ...]
    required_groups: tuple[str, ...]


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else None
    return annotation


def _element(annotation: Any, group: str | None) -> _Element | None:
    """The element a model field annotation describes, or None when it is not walked here."""
    inner = _unwrap_optional(annotation)
    many = typing.get_origin(inner) is list
    if many:
        (inner,) = typing.get_args(inner)
        inner = _unwrap_optional(inner)  # primitive lists allow null placeholders (not here)
    if inner is bool:
        return _Element(many, group, boolean=True)
    if typing.get_origin(inner) is typing.Annotated:  # a FHIR primitive (fhir_core metadata)
        return _Element(many, group, primitive=TypeAdapter(inner))
    get_model = getattr(inner, "get_model_klass", None)
    if get_model is None:
        return None
    model: type[BaseModel] = get_model()
    if getattr(model, "__resource_type__", None) in _ANY_RESOURCE:
        return None
    return _Element(many, group, model=model)


@lru_cache(maxsize=512)
def _shape(model: type[BaseModel]) -> _Shape:
    elements: dict[str, _Element] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if name.endswith("__ext") or not extra.get("element_property"):
            continue  # `_element` extensions and `fhir_comments`: left to the models
        group = extra.get("one_of_many")
        found = _element(field.annotation, str(group) if group else None)
        if found is not None:
            elements[field.alias or name] = found
    example: Any = model.model_construct()
    aliases = {name: field.alias or name for name, field in model.model_fields.items()}
    required = tuple(
        dict.fromkeys(
            [aliases[name] for name, _ext in example.get_required_fields()]  # FHIR primitives
            + [aliases[name] for name, field in model.model_fields.items() if field.is_required()]
        )
    )
    groups = tuple(
        prefix
        for prefix, names in example.get_one_of_many_fields().items()
        if _schema_extra(model, names[0]).get("one_of_many_required") is True
    )
    return _Shape(elements, required, groups)


def _schema_extra(model: type[BaseModel], name: str) -> dict[str, Any]:
    extra = model.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _value_ok(value: Any, element: _Element) -> bool:
    if value is None:
        return False
    if element.boolean:
        return isinstance(value, bool)
    if element.primitive is not None:
        if isinstance(value, (dict, list)):
            return False
        key = (type(value), value)
        if key in element.accepted:
            return True
        try:
            element.primitive.validate_python(value)
        except (ValidationError, ValueError, TypeError):
            return False
        if len(element.accepted) < REMEMBERED_VALUES:
            element.accepted.add(key)
        return True
    assert element.model is not None
    return _node_ok(value, _shape(element.model))


def _node_ok(node: Any, shape: _Shape) -> bool:
    if not isinstance(node, dict) or not node:
        return False
    chosen: set[str] = set()
    for key, value in node.items():
        element = shape.elements.get(key)
        if element is None:
            return False
        if element.group is not None:
            if element.group in chosen:  # one type per choice element
                return False
            chosen.add(element.group)
        if element.many:
            if not isinstance(value, list) or not value:
                return False
            if not all(_value_ok(v, element) for v in value):
                return False
        elif not _value_ok(value, element):
            return False
    return all(key in node for key in shape.required) and all(
        group in chosen for group in shape.required_groups
    )


def conforms(resource: Any, resource_type: str) -> bool:
    """True when `resource` is a `resource_type` the R4B models accept, checked quickly; False
    when this check cannot tell (run `check_resource` then)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
        return False
    model = model_class(resource_type)
    if model is None:
        return False
    return _node_ok({k: v for k, v in resource.items() if k != "resourceType"}, _shape(model))
