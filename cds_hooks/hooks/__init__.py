"""One module per CDS Hooks hook; `SERVICES` lists them in discovery order."""

from cds_hooks.hooks import (
    appointment_book,
    encounter_discharge,
    encounter_start,
    order_dispatch,
    order_select,
    order_sign,
)
from cds_hooks.service import HookService

SERVICES: tuple[HookService, ...] = (
    order_select.SERVICE,
    order_sign.SERVICE,
    order_dispatch.SERVICE,
    appointment_book.SERVICE,
    encounter_start.SERVICE,
    encounter_discharge.SERVICE,
)
SERVICES_BY_ID: dict[str, HookService] = {service.id: service for service in SERVICES}
