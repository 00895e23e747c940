"""encounter-start (supporting): coverage information for the encounter when it can be given."""

from __future__ import annotations

from cds_hooks.service import COMMON_PREFETCH, HookService

SERVICE = HookService(
    id="encounter-start-crd",
    hook="encounter-start",
    title="Greenlight coverage information at encounter start",
    description="Coverage information for the patient's encounter as it starts.",
    prefetch={
        **COMMON_PREFETCH,
        "encounter": "Encounter/{{context.encounterId}}",
        "user": "{{context.userId}}",
    },
    primary=False,
)
