"""order-dispatch (primary): the order being sent to a performer gets coverage information."""

from __future__ import annotations

from cds_hooks.service import COMMON_PREFETCH, HookService

SERVICE = HookService(
    id="order-dispatch-crd",
    hook="order-dispatch",
    title="Greenlight coverage requirements at order dispatch",
    description="Coverage, prior authorization and documentation requirements for an order "
    "when it is dispatched to a performer.",
    prefetch={**COMMON_PREFETCH, "order": "{{context.order}}"},
    primary=True,
    needs_order_from_ehr=True,
)
