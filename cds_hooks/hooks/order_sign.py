"""order-sign (primary): every draft order about to be signed gets coverage information."""

from __future__ import annotations

from cds_hooks.service import COMMON_PREFETCH, HookService

SERVICE = HookService(
    id="order-sign-crd",
    hook="order-sign",
    title="Greenlight coverage requirements at order signing",
    description="Coverage, prior authorization and documentation requirements for the orders "
    "being signed, as coverage-information on each order, with instructions and policy links.",
    prefetch={
        **COMMON_PREFETCH,
        "user": "{{context.userId}}",
        "encounter": "Encounter/{{context.encounterId}}",
    },
    primary=True,
)
