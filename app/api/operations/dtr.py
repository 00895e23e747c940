"""What the DTR operation routers share: the DTR services of an application, and reading an
operation's JSON body.

`build_dtr_services` loads and checks the documentation content (Questionnaires, CQL Libraries,
value sets, adaptive step plans); `create_app` calls it at start-up, so broken content stops the
server there, naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request

from app.config import Settings
from app.dtr.adaptive import AdaptiveFlows, flows_for
from app.dtr.content import DtrContent, content_for
from app.dtr.package import PackageServices
from app.dtr.responses import ResponseEvaluator
from app.fhir.models import parse_json_body
from app.fhir.negotiation import check_body_media_type
from app.rules.loader import TopicSet
from app.store.assertions import AssertionStore
from app.store.repository import ResourceStore


@dataclass(frozen=True)
class DtrServices:
    """The DTR content and the rule and assertion stores, per application."""

    package: PackageServices
    content: DtrContent
    flows: AdaptiveFlows
    evaluator: ResponseEvaluator


def build_dtr_services(
    settings: Settings, store: ResourceStore, topics: TopicSet, assertions: AssertionStore
) -> DtrServices:
    """Load the documentation content (DtrContentError names a broken file) and wire it up."""
    root = settings.rules_dir.resolve()
    content = content_for(root)
    flows = flows_for(root)
    return DtrServices(
        package=PackageServices(
            store=store,
            assertions=assertions,
            topics=topics,
            content=content,
            flows=flows,
            fhir_base=settings.fhir_base_url,
        ),
        content=content,
        flows=flows,
        evaluator=ResponseEvaluator(topics, content, flows),
    )


def dtr_services(request: Request) -> DtrServices:
    """The application's DTR services, built at start-up by `create_app`."""
    found: DtrServices = request.app.state.dtr
    return found


async def json_body(request: Request) -> Any:
    """The request body as JSON (415 unless it is declared JSON, 400 unless it parses)."""
    check_body_media_type(request)
    return parse_json_body(await request.body())


def today() -> date:
    return datetime.now(UTC).date()
