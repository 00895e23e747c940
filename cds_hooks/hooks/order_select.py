"""order-select (supporting): advice on the selected draft orders; never asks for documentation
(CRD hook-19), so only coverage and prior-authorization answers are given at this point."""

from __future__ import annotations

from cds_hooks.service import COMMON_PREFETCH, HookService

SERVICE = HookService(
    id="order-select-crd",
    hook="order-select",
    title="Greenlight coverage requirements at order selection",
    description="Early coverage and prior authorization information for the selected orders.",
    prefetch={**COMMON_PREFETCH, "user": "{{context.userId}}"},
    primary=False,
)
