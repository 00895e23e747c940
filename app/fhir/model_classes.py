"""The R4B model class of a FHIR resource type (fhir.resources has no R4 package: DECISIONS.md)."""

from __future__ import annotations

from functools import lru_cache

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel


@lru_cache(maxsize=256)
def model_class(resource_type: str) -> type[BaseModel] | None:
    """The R4B model for `resource_type`, or None when FHIR has no such resource."""
    try:
        cls: type[BaseModel] = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None
    return cls
