"""encounter-discharge (supporting): coverage information for the encounter at discharge."""

from __future__ import annotations

from cds_hooks.service import COMMON_PREFETCH, HookService

SERVICE = HookService(
    id="encounter-discharge-crd",
    hook="encounter-discharge",
    title="Greenlight coverage information at discharge",
    description="Coverage information for the patient's encounter at discharge.",
    prefetch={
        **COMMON_PREFETCH,
        "encounter": "Encounter/{{context.encounterId}}",
        "user": "{{context.userId}}",
    },
    primary=False,
)
