"""`create_app()`: settings, storage, authentication, middleware, error handlers and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app import __version__
from app.api import cds_services, metadata, resources, smart, subscriptions, um, um_metrics
from app.api.body_limit import BodySizeLimit
from app.api.context import Services
from app.api.errors import register_error_handlers
from app.api.operations import claim_inquire, claim_submit, dtr_router
from app.api.operations.dtr import build_dtr_services
from app.auth.cds_jwt import CdsJwtVerifier, OpenCdsAccess, build_cds_verifier
from app.auth.guard import Authenticator, OpenAccess
from app.config import Settings, get_settings
from app.long_lived import freeze_long_lived
from app.pas.adjudicate import Adjudicator
from app.pas.outbox import OutboxWorker
from app.pas.service import PasService
from app.pas.subscription_store import SubscriptionService
from app.registry import REGISTRY, Registry
from app.rules.loader import load_topics
from app.store.assertions import AssertionStore
from app.store.db import create_database
from app.store.repository import ResourceStore
from cds_hooks.respond import CrdDependencies, CrdResponder

log = logging.getLogger("greenlight")


def _authenticator(settings: Settings, store: ResourceStore) -> Authenticator:
    if not settings.auth_enabled:
        if not settings.demo:
            raise RuntimeError("Auth can be turned off only in demo mode (GREENLIGHT_DEMO=true)")
        log.warning(
            "!!! AUTHENTICATION IS OFF (demo mode): every /fhir request is allowed "
            "without a token. Never run this way with real data. !!!"
        )
        return OpenAccess()
    from app.auth.smart import SmartBackendAuth

    return SmartBackendAuth(settings, store)


def _cds_verifier(settings: Settings, store: ResourceStore) -> CdsJwtVerifier | OpenCdsAccess:
    if not settings.auth_enabled:  # demo only: _authenticator refuses auth off otherwise
        log.warning("!!! CDS Hooks callers are NOT authenticated (demo mode, auth off) !!!")
        return OpenCdsAccess()
    return build_cds_verifier(settings, store)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """Build the Greenlight ASGI application (the database schema must already be migrated)."""
    settings = settings or get_settings()
    registry = registry or REGISTRY
    topics = load_topics(settings.rules_dir)  # a malformed topic stops start-up here
    database = create_database(settings.database_url)
    store = ResourceStore(database, registry)
    assertions = AssertionStore(database)  # CRD's answers, read again by DTR and PAS
    http = httpx.AsyncClient(follow_redirects=False)  # the EHR's FHIR servers, JWKS endpoints

    outbox = OutboxWorker(database, registry, settings)  # PAS notifications (app/pas/outbox.py)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        outbox.start()
        if settings.gc_freeze:
            freeze_long_lived()  # start-up data out of the full GC passes (app/long_lived.py)
        yield
        await outbox.stop()
        await http.aclose()
        await database.dispose()

    app = FastAPI(
        title="Greenlight",
        version=__version__,
        description="Payer-side HL7 Da Vinci prior authorization server",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = Services(settings=settings, registry=registry, store=store)
    app.state.topics = topics  # the metrics report lists what needs authorization
    app.state.authenticator = _authenticator(settings, store)
    app.state.cds_verifier = _cds_verifier(settings, store)
    app.state.crd = CrdResponder(
        CrdDependencies(
            store=store,
            assertions=assertions,
            topics=topics,
            http=http,
            payer_name=settings.payer_name,
            dtr_app_url=settings.dtr_app_url,
        )
    )
    app.state.dtr = build_dtr_services(settings, store, topics, assertions)
    app.state.outbox = outbox
    app.state.pas = PasService(
        store, settings, Adjudicator(store, assertions, topics), wake=outbox.wake
    )
    app.state.subscriptions = SubscriptionService(store, settings, wake=outbox.wake)
    register_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # CRD first, its per-call budget being the tightest: the hook call as a route of the app
    # itself (an included router's route is reached through two more routing layers per call)
    app.add_route(cds_services.SERVICE_PATH, cds_services.call_service, methods=["POST"])
    app.include_router(cds_services.router)
    app.include_router(metadata.router)
    app.include_router(smart.router)  # before resources: /fhir/.well-known/... is no type
    app.include_router(dtr_router)  # DTR operations: before resources (/fhir/{type}/$op)
    app.include_router(claim_submit.router)  # PAS: before resources (POST /fhir/Claim/$submit)
    app.include_router(claim_inquire.router)
    app.include_router(subscriptions.router)  # PAS Subscription create/update/delete/$status
    app.include_router(um.router)
    app.include_router(um_metrics.router)  # GET /um/metrics (CMS-0057-F report)
    app.include_router(resources.router)
    return app
