"""The `greenlight` command: serve, db upgrade, demo-data, metrics (and the IG and rules tools).

Each sub-command is a small function; argparse wires them. Output goes to stdout for people,
logs to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.config import Settings, get_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.store.migrate import upgrade_database
    from app.tls import TlsConfigError, server_context, tls_files

    if args.demo:
        import os

        os.environ["GREENLIGHT_DEMO"] = "true"
        if args.no_auth:
            os.environ["GREENLIGHT_AUTH_ENABLED"] = "false"
        get_settings.cache_clear()
        settings = get_settings()
    elif args.no_auth:
        print("--no-auth is allowed only with --demo", file=sys.stderr)
        return 2
    try:
        tls = tls_files(settings)
    except TlsConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    upgrade_database(settings.database_url)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
        access_log=args.access_log,
        http="httptools",
        loop="uvloop",
        ssl_certfile=None if tls is None else str(tls.certificate),
        ssl_keyfile=None if tls is None else str(tls.key),
        ssl_context_factory=None if tls is None else server_context,
    )
    return 0


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from app.store.migrate import upgrade_database

    upgrade_database(settings.database_url)
    print(f"database at {settings.database_url} is up to date")
    return 0


def _demo_data(_args: argparse.Namespace, settings: Settings) -> int:
    from app.demo.loader import load_demo_data
    from app.store.migrate import upgrade_database

    upgrade_database(settings.database_url)
    report = asyncio.run(load_demo_data(settings))
    print(report.describe())
    return 0


def _ig_list(_args: argparse.Namespace, settings: Settings) -> int:
    from app.fhir.packages import PackageRegistry

    registry = PackageRegistry.from_directory(settings.ig_packages)
    print(f"FHIR packages in {settings.ig_packages}: {len(registry.packages)}")
    for package in registry.packages:
        print(package.describe())
    return 0


def _ig_install(args: argparse.Namespace, settings: Settings) -> int:
    from app.fhir.packages import PackageError, install_package

    try:
        package = install_package(args.archive, settings.ig_packages, force=args.force)
    except PackageError as exc:
        print(f"cannot install {args.archive}: {exc}", file=sys.stderr)
        return 1
    print(f"installed {package.id} into {package.source.parent}")
    return 0


def _rules_check(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from app.rules.loader import TopicLoadError, load_topics

    directory = Path(args.directory) if args.directory else settings.rules_dir
    try:
        topics = load_topics(directory)
    except TopicLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    codes = sum(len(topic.codes) for topic in topics.topics.values())
    print(f"{directory}: {len(topics.topics)} topics, {codes} codes: all valid")
    for topic in sorted(topics.topics.values(), key=lambda t: t.id):
        plans = ", ".join(topic.topic.plans)
        print(f"  {topic.id:<20} {len(topic.codes):>5} codes  plans: {plans}  ({topic.source})")
    return 0


def _metrics(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    import orjson

    from app.rules.loader import TopicLoadError, load_topics
    from app.store.db import create_database
    from app.um.cases import ReviewCase
    from app.um.metrics import PeriodError, build_report, period_of
    from app.um.metrics_markdown import render_markdown
    from app.um.metrics_store import cases_in_period

    try:
        period = period_of(args.year, args.start, args.end, datetime.now(UTC).date())
        topics = load_topics(settings.rules_dir)
    except (PeriodError, TopicLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, PeriodError) else 1

    async def read() -> list[ReviewCase]:
        database = create_database(settings.database_url, pool_size=1)
        try:
            return await cases_in_period(database, period)
        finally:
            await database.dispose()

    report = build_report(asyncio.run(read()), topics, period)
    if args.format == "markdown":
        print(render_markdown(report, settings.payer_name), end="")
    else:
        print(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="greenlight", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (applies migrations first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="demo profile (demo secrets)")
    serve.add_argument(
        "--no-auth", action="store_true", help="with --demo: accept /fhir calls without tokens"
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(handler=_db_upgrade)

    rules = commands.add_parser("rules", help="coverage topics")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="validate the topics without serving")
    check.add_argument("directory", nargs="?", help="rules directory (GREENLIGHT_RULES_DIR)")
    check.set_defaults(handler=_rules_check)

    demo = commands.add_parser("demo-data", help="load the demo payer (idempotent)")
    demo.set_defaults(handler=_demo_data)

    metrics = commands.add_parser(
        "metrics",
        help="the CMS-0057-F prior authorization metrics of a year (default: the previous one)",
    )
    metrics.add_argument("--year", help="calendar year, e.g. 2025")
    metrics.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="with --to")
    metrics.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="included")
    metrics.add_argument("--format", choices=("json", "markdown"), default="json")
    metrics.set_defaults(handler=_metrics)

    ig = commands.add_parser("ig", help="FHIR IG packages (GREENLIGHT_IG_PACKAGES)")
    ig_commands = ig.add_subparsers(dest="ig_command", required=True)
    ig_commands.add_parser("list", help="list the loaded packages").set_defaults(handler=_ig_list)
    install = ig_commands.add_parser("install", help="unpack a package .tgz into the directory")
    install.add_argument("archive", type=Path, metavar="PATH.tgz")
    install.add_argument("--force", action="store_true", help="replace an installed version")
    install.set_defaults(handler=_ig_install)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args, get_settings())


if __name__ == "__main__":
    sys.exit(main())
