"""`GET /um/metrics?year=YYYY` (or `?from=YYYY-MM-DD&to=YYYY-MM-DD`): the CMS-0057-F prior
authorization metrics report as JSON (`app.um.metrics`), for the payer's public page.

Without parameters: the previous calendar year (the one the rule reports by March 31). Same
access as the rest of `/um` (the reviewer role, `app.api.um.reviewer`): 401 without a token, 403
without the role. A bad period answers 400 with an OperationOutcome naming the parameter
(`year`, `from`, `to`). `greenlight metrics` (`app/cli.py`) prints the same report.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.um import reviewer
from app.fhir.outcomes import FhirError
from app.pas.service import PasService
from app.rules.loader import TopicSet
from app.um.metrics import PeriodError, build_report, period_of
from app.um.metrics_store import cases_in_period

router = APIRouter(prefix="/um")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    await reviewer(request)
    query = request.query_params
    try:
        period = period_of(
            query.get("year"), query.get("from"), query.get("to"), datetime.now(UTC).date()
        )
    except PeriodError as exc:
        raise FhirError.single(400, "invalid", str(exc), exc.field) from None
    pas: PasService = request.app.state.pas
    topics: TopicSet = request.app.state.topics
    report = build_report(await cases_in_period(pas.database, period), topics, period)
    return Response(orjson.dumps(report.to_json()), media_type="application/json")
