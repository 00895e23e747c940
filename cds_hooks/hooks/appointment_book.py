"""appointment-book (primary): each proposed appointment gets coverage information."""

from __future__ import annotations

from cds_hooks.service import COMMON_PREFETCH, HookService

SERVICE = HookService(
    id="appointment-book-crd",
    hook="appointment-book",
    title="Greenlight coverage requirements at appointment booking",
    description="Coverage and prior authorization requirements for the appointments being "
    "booked, as coverage-information on each appointment.",
    prefetch={**COMMON_PREFETCH, "user": "{{context.userId}}"},
    primary=True,
)
