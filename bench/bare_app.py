"""The bare reference app: FastAPI + uvicorn doing only the irreducible work of each route.

For each scenario route it verifies the bearer JWT when one is sent (HS256, PyJWT, the same secret
and audience as Greenlight's access tokens), parses the request body with orjson when there is
one, and answers a fixed body. The harness hands it Greenlight's own answers captured while
seeding (`BENCH_BARE_FIXTURES`, a directory of `metadata.json`, `patient.json`, `created.json`,
`crd.json`, `dtr-package.json`, `dtr-next-question.json`, `pas-submit.json`), so both targets
send the same bytes back; without it, built-in bodies of the same shape are used.

`POST /fhir/Questionnaire/$questionnaire-package` and `POST /fhir/Questionnaire/$next-question`
verify the bearer JWT, parse the body with orjson, check it is a Parameters resource and answer
Greenlight's captured package / QuestionnaireResponse. `POST /fhir/Claim/$submit` does the same
with the PAS request Bundle (a Bundle whose first entry is a Claim) and answers Greenlight's
captured response Bundle (an A1 certification).

`POST /cds-services/{id}` does what any CDS service must do with the CDS Hooks JWT the bench EHR
signs (the same tokens Greenlight gets): header checks (`alg` ES384/RS384, `typ`, `kid`, `jku`),
signature with the registered public key (PyJWT), `iss`, `aud` (Greenlight's exact service URL),
`exp`/`iat` (60 s leeway, at most an hour ahead) and a `jti` never seen before (in memory); then
it parses the body with orjson and answers Greenlight's captured CRD response.

Environment: `BENCH_BARE_FIXTURES`, `BENCH_BARE_TOKEN_SECRET`, `BENCH_BARE_TOKEN_AUDIENCE`,
`BENCH_BARE_CDS_JWKS` (the EHR's public JWKS), `BENCH_BARE_CDS_ISSUER`, `BENCH_BARE_CDS_JKU`,
`BENCH_BARE_CDS_AUDIENCE`.
Run with `uvicorn bench.bare_app:app --http httptools --loop uvloop`.

`python -m bench.bare_app --port P` instead runs a raw asyncio HTTP/1.1 server (no framework,
no parsing beyond framing) answering the fixed Patient: the ceiling of the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import jwt
import orjson
import uvloop
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bench.scenarios import PATIENT

FHIR_JSON_UTF8 = "application/fhir+json; charset=utf-8"
_LAST_UPDATED = "2025-01-01T00:00:00.000000+00:00"


def _default_bodies() -> dict[str, bytes]:
    patient = {"id": "bench-patient", **PATIENT}
    patient["meta"] = {**PATIENT["meta"], "versionId": "1", "lastUpdated": _LAST_UPDATED}
    resources = [
        {
            "type": name,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{name}",
            "interaction": [
                {"code": code}
                for code in ("read", "vread", "update", "delete", "history-instance", "create")
            ],
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
                {"name": "identifier", "type": "token"},
            ],
        }
        for name in ("Patient", "Coverage", "Claim", "ClaimResponse", "Practitioner")
    ]
    metadata = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _LAST_UPDATED,
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{"mode": "server", "resource": resources}],
    }
    return {
        "metadata": orjson.dumps(metadata),
        "patient": orjson.dumps(patient),
        "created": orjson.dumps(patient),
        "crd": orjson.dumps({"cards": [], "systemActions": []}),
        "dtr-package": orjson.dumps({"resourceType": "Parameters", "parameter": []}),
        "dtr-next-question": orjson.dumps(
            {"resourceType": "QuestionnaireResponse", "status": "in-progress"}
        ),
        "pas-submit": orjson.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "ClaimResponse", "outcome": "complete"}}],
            }
        ),
    }


def _load_bodies() -> dict[str, bytes]:
    bodies = _default_bodies()
    folder = os.environ.get("BENCH_BARE_FIXTURES")
    if folder:
        for name in bodies:
            path = Path(folder) / f"{name}.json"
            if path.exists():
                bodies[name] = path.read_bytes()
    return bodies


BODIES = _load_bodies()
TOKEN_SECRET = os.environ.get("BENCH_BARE_TOKEN_SECRET") or None
TOKEN_AUDIENCE = os.environ.get("BENCH_BARE_TOKEN_AUDIENCE") or None

CdsKeys = dict[tuple[str, str], Any]


def _cds_keys(text: str | None) -> CdsKeys:
    """{(kid, alg): public key} of the EHR's JWKS (RS384 / ES384 keys)."""
    keys: CdsKeys = {}
    for jwk in json.loads(text)["keys"] if text else []:
        ec = jwk["kty"] == "EC"
        alg = jwk.get("alg") or ("ES384" if ec else "RS384")
        algorithm = jwt.algorithms.ECAlgorithm if ec else jwt.algorithms.RSAAlgorithm
        keys[(jwk["kid"], alg)] = algorithm.from_jwk(json.dumps(jwk))
    return keys


CDS_KEYS = _cds_keys(os.environ.get("BENCH_BARE_CDS_JWKS"))
CDS_ISSUER = os.environ.get("BENCH_BARE_CDS_ISSUER") or None
CDS_JKU = os.environ.get("BENCH_BARE_CDS_JKU") or None
CDS_AUDIENCE = os.environ.get("BENCH_BARE_CDS_AUDIENCE") or None
CDS_ALGORITHMS = ("ES384", "RS384")
CDS_LEEWAY_SECONDS = 60
CDS_MAX_LIFETIME_SECONDS = 3600
_SEEN_JTIS: set[str] = set()

_UNAUTHORIZED = orjson.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "invalid bearer token"}],
    }
)
_BAD_REQUEST = orjson.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": "wrong resource type"}],
    }
)


def _check_token(request: Request) -> Response | None:
    """Verify the bearer JWT's HS256 signature, expiry and audience; a 401 response if it fails."""
    if TOKEN_SECRET is None:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Response(_UNAUTHORIZED, status_code=401, media_type=FHIR_JSON_UTF8)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            TOKEN_SECRET,
            algorithms=["HS256"],
            audience=TOKEN_AUDIENCE,
            options={"require": ["exp", "sub", "scope"], "verify_aud": TOKEN_AUDIENCE is not None},
        )
    except jwt.InvalidTokenError:
        return Response(_UNAUTHORIZED, status_code=401, media_type=FHIR_JSON_UTF8)
    del claims
    return None


def _check_cds_jwt(request: Request) -> Response | None:
    """Verify a CDS Hooks JWT as a CDS service must; a 401 response if it fails."""
    if not CDS_KEYS:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Response(_UNAUTHORIZED, status_code=401, media_type=FHIR_JSON_UTF8)
    try:
        head = jwt.get_unverified_header(token)
        alg, kid = str(head.get("alg")), str(head.get("kid"))
        key = CDS_KEYS.get((kid, alg)) if alg in CDS_ALGORITHMS else None
        if key is None or head.get("typ", "JWT") != "JWT" or head.get("jku", CDS_JKU) != CDS_JKU:
            raise jwt.InvalidTokenError("header")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=CDS_AUDIENCE,
            issuer=CDS_ISSUER,
            leeway=CDS_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.InvalidTokenError:
        return Response(_UNAUTHORIZED, status_code=401, media_type=FHIR_JSON_UTF8)
    jti = claims["jti"]
    too_long = claims["exp"] - time.time() > CDS_MAX_LIFETIME_SECONDS + CDS_LEEWAY_SECONDS
    if not isinstance(jti, str) or not jti or jti in _SEEN_JTIS or too_long:
        return Response(_UNAUTHORIZED, status_code=401, media_type=FHIR_JSON_UTF8)
    _SEEN_JTIS.add(jti)
    return None


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/fhir/metadata")
async def metadata(request: Request) -> Response:
    return Response(BODIES["metadata"], media_type=FHIR_JSON_UTF8)


@app.get("/fhir/{resource_type}/{resource_id}")
async def read(request: Request, resource_type: str, resource_id: str) -> Response:
    denied = _check_token(request)
    if denied is not None:
        return denied
    headers = {"ETag": 'W/"1"', "Last-Modified": _LAST_UPDATED}
    return Response(BODIES["patient"], headers=headers, media_type=FHIR_JSON_UTF8)


@app.post("/fhir/{resource_type}")
async def create(request: Request, resource_type: str) -> Response:
    denied = _check_token(request)
    if denied is not None:
        return denied
    parsed = orjson.loads(await request.body())
    if not isinstance(parsed, dict) or parsed.get("resourceType") != resource_type:
        return Response(_BAD_REQUEST, status_code=400, media_type=FHIR_JSON_UTF8)
    headers = {
        "ETag": 'W/"1"',
        "Last-Modified": _LAST_UPDATED,
        "Location": f"http://127.0.0.1/fhir/{resource_type}/bench-patient/_history/1",
    }
    return Response(BODIES["created"], status_code=201, headers=headers, media_type=FHIR_JSON_UTF8)


async def _operation(request: Request, answer: str) -> Response:
    """A FHIR operation taking a Parameters resource: token, parse, answer `answer`'s body."""
    denied = _check_token(request)
    if denied is not None:
        return denied
    parsed = orjson.loads(await request.body())
    if not isinstance(parsed, dict) or parsed.get("resourceType") != "Parameters":
        return Response(_BAD_REQUEST, status_code=400, media_type=FHIR_JSON_UTF8)
    return Response(BODIES[answer], media_type=FHIR_JSON_UTF8)


@app.post("/fhir/Questionnaire/$questionnaire-package")
async def questionnaire_package(request: Request) -> Response:
    return await _operation(request, "dtr-package")


@app.post("/fhir/Questionnaire/$next-question")
async def next_question(request: Request) -> Response:
    return await _operation(request, "dtr-next-question")


@app.post("/fhir/Claim/$submit")
async def claim_submit(request: Request) -> Response:
    """PAS `$submit`: token, parse the request Bundle, check it starts with a Claim, answer."""
    denied = _check_token(request)
    if denied is not None:
        return denied
    parsed = orjson.loads(await request.body())
    entries = parsed.get("entry") if isinstance(parsed, dict) else None
    if (
        not isinstance(parsed, dict)
        or parsed.get("resourceType") != "Bundle"
        or not isinstance(entries, list)
        or not entries
        or not isinstance(entries[0], dict)
        or (entries[0].get("resource") or {}).get("resourceType") != "Claim"
    ):
        return Response(_BAD_REQUEST, status_code=400, media_type=FHIR_JSON_UTF8)
    return Response(BODIES["pas-submit"], media_type=FHIR_JSON_UTF8)


@app.post("/cds-services/{service_id}")
async def cds_service(request: Request, service_id: str) -> Response:
    denied = _check_cds_jwt(request)
    if denied is not None:
        return denied
    parsed = orjson.loads(await request.body())
    if not isinstance(parsed, dict) or not isinstance(parsed.get("context"), dict):
        return Response(_BAD_REQUEST, status_code=400, media_type=FHIR_JSON_UTF8)
    return Response(BODIES["crd"], media_type="application/json")


# --- the raw server: the load generator's ceiling ------------------------------------------------


class _RawHttp(asyncio.Protocol):
    """Answers every HTTP/1.1 request with the same pre-built response; frames requests only."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                return
            del buf[:total]
            assert self.transport is not None
            self.transport.write(self.response)


async def _serve_raw(host: str, port: int) -> None:
    body = BODIES["patient"]
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + FHIR_JSON_UTF8.encode()
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _RawHttp(response), host, port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="raw fixed-response HTTP server (generator ceiling)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(_serve_raw(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
