"""`config/leadrules.yaml`: the daemon's settings, every key optional (defaults below)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leadrules.engine.envrefs import ENV_REF, MissingEnv, resolve
from leadrules.engine.errors import ConfigError
from leadrules.engine.language.channels import shown_path
from leadrules.engine.language.rule_files import Duration
from leadrules.engine.language.validation import validation_problems
from leadrules.engine.language.yaml_source import load as load_yaml
from leadrules.engine.timefmt import US_PER_S


class RateLimitSettings(BaseModel):
    """Requests per write key (a token bucket): `burst` at once, `per_second` on average.
    Generous by default: a browser write key carries a whole site's traffic. 0 turns it off."""

    model_config = ConfigDict(extra="forbid")
    per_second: float = Field(default=500.0, ge=0, le=1_000_000)
    burst: int = Field(default=1000, ge=1, le=1_000_000)


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    write_keys: list[str] = Field(default_factory=lambda: ["${LEADRULES_WRITE_KEY}"])
    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    # Origins whose pages may post to the ingest routes. "*" as Segment's own API does: a
    # browser write key is public by design; a list restricts it.
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Shared secret of Segment's Webhooks destination (`${VAR}`): with it, a request signed
    # with `X-Signature` (hex HMAC-SHA1 of the body) is accepted without a write key.
    segment_webhook_secret: str | None = None
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    # A `Lead Rejected` without `properties.reason` is refused (400, field properties.reason).
    require_reject_reason: bool = False
    # `/metrics` needs this token (Bearer, or HTTP Basic password) when set (`${VAR}`).
    metrics_token: str | None = None

    @field_validator("segment_webhook_secret", "metrics_token")
    @classmethod
    def _secret_from_environment(cls, value: str | None) -> str | None:
        # A secret's value never lives under config/ (the contract's rule for secrets).
        if value is not None and not ENV_REF.search(value):
            raise ValueError('write the secret as "${ENV_VAR}" and set the variable')
        return value

    def resolved_metrics_token(self) -> str | None:
        """The `/metrics` token from the environment; None when unset (metrics open)."""
        if not self.metrics_token:
            return None
        try:
            return resolve(self.metrics_token) or None
        except MissingEnv:
            return None

    def resolved_segment_webhook_secret(self) -> str | None:
        """The webhook secret with `${VAR}` read from the environment; None when unset."""
        if not self.segment_webhook_secret:
            return None
        try:
            return resolve(self.segment_webhook_secret) or None
        except MissingEnv:
            return None


class DispatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(default=8, ge=1, le=1000)
    # microseconds once validated; `2s`, `10m` in the file (a malformed one is `check`'s
    # problem, with its position, like in a rule file)
    backoff_base: Duration = 2 * US_PER_S
    backoff_max: Duration = 600 * US_PER_S


class Settings(BaseModel):
    """`config/leadrules.yaml`: every key optional."""

    model_config = ConfigDict(extra="forbid")
    database_url: str = "sqlite:///var/leadrules.db"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    # A candidate rule directory the daemon runs beside the live one, its decisions recorded
    # and never delivered (daemon.shadow_loop; docs/rules.md, "Shadow rule sets").
    shadow: str | None = None

    def resolved_write_keys(self) -> list[str]:
        """Write keys with `${VAR}` read from the environment; unset variables give none."""
        keys = []
        for key in self.ingest.write_keys:
            try:
                value = resolve(key)
            except MissingEnv:
                continue
            if value:
                keys.append(value)
        return keys


def load_settings(config_dir: Path | None) -> Settings:
    """`config/leadrules.yaml` -> Settings (defaults when absent). Raises ConfigError."""

    if config_dir is None:
        return Settings()
    path = Path(config_dir) / "leadrules.yaml"
    if not path.is_file():
        return Settings()
    src, problems = load_yaml(path, shown_path(path))
    if problems:
        raise ConfigError(problems)
    try:
        return Settings.model_validate(src.data or {})
    except ValidationError as exc:
        raise ConfigError(validation_problems(src, exc, model=Settings, noun="setting")) from None
