"""Settings: the one configuration object, read from `GREENLIGHT_*` environment variables.

Every knob the server has lives here; nothing else reads the environment. Secrets are never
defaulted outside the demo profile: with `GREENLIGHT_DEMO=true` a token-signing secret is made
and kept under the data directory, otherwise `GREENLIGHT_TOKEN_SECRET` must be set when auth is on.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class ClientConfig(BaseModel):
    """A SMART Backend Services client registered with this server."""

    client_id: str
    scopes: list[str] = Field(
        description="Allowed scopes, e.g. `system/*.rs`, `system/Claim.cud`, or "
        "`greenlight/um.reviewer` (the /um reviewer role); see app/auth/scopes.py",
    )
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    name: str | None = None


class CdsClientConfig(BaseModel):
    """A CDS Client (EHR) trusted to call the CDS Hooks services, named by its JWT `iss`.

    Keys come from `jwks` (inline) when given, else from `jwks_url`; `jwks_url` is also the only
    `jku` header value accepted from this issuer.
    """

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _needs_keys(self) -> CdsClientConfig:
        if self.jwks_url is None and self.jwks is None:
            raise ValueError(f"CDS client {self.iss!r} needs `jwks_url` or `jwks`")
        return self


class Settings(BaseSettings):
    """Greenlight configuration; each field is `GREENLIGHT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="GREENLIGHT_", env_file=None, extra="ignore")

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///./{DEFAULT_DATA_DIR}/greenlight.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Public base URL; the FHIR base is `<base_url>/fhir`",
    )
    ig_packages: Path = Field(
        default=Path.home() / ".fhir" / "packages",
        description="Directory of FHIR IG packages (.tgz or unpacked package/ folders)",
    )
    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Where local state is kept")
    demo: bool = Field(default=False, description="Demo profile: demo secrets, auth may be off")
    auth_enabled: bool = Field(default=True, description="Require SMART bearer tokens on /fhir")
    token_secret: str | None = Field(
        default=None, description="HMAC secret that signs issued access tokens (required)"
    )
    token_lifetime_seconds: int = Field(default=300, ge=30, le=3600)
    assertion_max_lifetime_seconds: int = Field(
        default=300, description="Longest `exp - now` accepted on a client assertion"
    )
    clients: str | None = Field(
        default=None,
        description="Registered clients: a JSON list, or the path of a JSON file holding it",
    )
    cds_clients: str | None = Field(
        default=None,
        description="CDS Hooks clients: JSON `{iss: jwks_url}`, a JSON list of "
        "`{iss, jwks_url | jwks, name}`, or the path of a JSON file holding either",
    )
    cds_allow_unsigned: bool = Field(
        default=False, description="Accept CDS Hooks calls without a JWT (demo mode only)"
    )
    gc_freeze: bool = Field(
        default=True,
        description="Keep start-up data out of the cyclic GC's full passes and collect the young "
        "generation less often (app/long_lived.py); off only where one process builds many apps "
        "(the tests)",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain `greenlight serve` speaks HTTPS with (with "
        "`tls_key_file`; none: plain HTTP, TLS left to a proxy; app/tls.py)",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of `tls_cert_file` (unencrypted)"
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(default=20, ge=1, le=1000)
    max_page_size: int = Field(default=500, ge=1, le=10000)
    log_level: str = Field(default="info")
    validation: Literal["off", "warn", "enforce"] = Field(default="warn")
    rules_dir: Path = Field(
        default=Path("questionnaires"),
        description="Coverage topics: one folder per topic holding topic.yaml",
    )
    dtr_app_url: str | None = Field(
        default=None,
        description="Launch URL of the DTR SMART app offered in CRD cards when documentation "
        "is needed (none: no launch card)",
    )
    payer_name: str = Field(
        default="Greenlight Health Plan",
        description="The insurer name on the member card (CRD card source.label)",
    )
    # --- PAS notifications (outbox) and utilization management ---
    pas_outbox_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the outbox worker looks for due work"
    )
    pas_outbox_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a claimed notification is reserved before another worker may retry",
    )
    pas_notify_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="HTTP timeout of one notification POST"
    )
    pas_notify_backoff_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles per attempt, capped at 15 min"
    )
    pas_notify_max_attempts: int = Field(
        default=12, ge=1, le=100, description="Attempts before a notification is given up"
    )
    pas_handshake_attempts: int = Field(
        default=3, ge=1, le=20, description="Handshake attempts before a Subscription is `error`"
    )
    subscription_allow_http: bool = Field(
        default=False,
        description="Accept http:// (not https://) subscription endpoints (always in demo mode)",
    )
    um_reviewers: str = Field(
        default="",
        description="Comma-separated client ids holding the utilization-review role (/um API); "
        "a client registered with the `greenlight/um.reviewer` scope holds it too",
    )

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("cds_allow_unsigned")
    @classmethod
    def _unsigned_only_in_demo(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("demo", False):
            raise ValueError("GREENLIGHT_CDS_ALLOW_UNSIGNED is only allowed with GREENLIGHT_DEMO")
        return value

    @property
    def fhir_base_url(self) -> str:
        return f"{self.base_url}/fhir"

    def registered_clients(self) -> list[ClientConfig]:
        """Parse `clients` (inline JSON or a file path) into client configurations."""
        if not self.clients:
            return []
        raw = self.clients.strip()
        text = raw if raw.startswith("[") else Path(raw).read_text(encoding="utf-8")
        return [ClientConfig.model_validate(item) for item in json.loads(text)]

    def registered_cds_clients(self) -> list[CdsClientConfig]:
        """Parse `cds_clients` (inline JSON or a file path; mapping or list form)."""
        if not self.cds_clients:
            return []
        raw = self.cds_clients.strip()
        text = raw if raw[:1] in ("{", "[") else Path(raw).read_text(encoding="utf-8")
        document = json.loads(text)
        if isinstance(document, dict):
            document = [
                {"iss": iss, **(value if isinstance(value, dict) else {"jwks_url": value})}
                for iss, value in document.items()
            ]
        if not isinstance(document, list):
            raise ValueError("GREENLIGHT_CDS_CLIENTS must be a JSON object or list")
        clients = [CdsClientConfig.model_validate(item) for item in document]
        issuers = [client.iss for client in clients]
        if len(set(issuers)) != len(issuers):
            raise ValueError("GREENLIGHT_CDS_CLIENTS registers an issuer twice")
        return clients

    def resolved_token_secret(self) -> str:
        """The access-token signing secret; in demo mode one is created and kept in data_dir."""
        if self.token_secret:
            return self.token_secret
        if not self.demo:
            raise RuntimeError(
                "GREENLIGHT_TOKEN_SECRET must be set when auth is enabled outside demo mode"
            )
        secret_file = self.data_dir / "demo-token-secret"
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            secret_file.chmod(0o600)
        return secret_file.read_text(encoding="utf-8").strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
