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

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class ClientConfig(BaseModel):
    """A SMART Backend Services client registered with this server."""

    client_id: str
    scopes: list[str] = Field(
        description="Allowed scopes, e.g. `system/*.rs` or `system/Claim.cud`",
    )
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    name: str | None = None


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
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(default=20, ge=1, le=1000)
    max_page_size: int = Field(default=500, ge=1, le=10000)
    log_level: str = Field(default="info")
    validation: Literal["off", "warn", "enforce"] = Field(default="warn")

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

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
