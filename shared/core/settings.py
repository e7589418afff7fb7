"""Application settings: one validated pydantic-settings class, read once per worker process."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from shared.core.errors import ConfigError, field_errors
from shared.core.key_limits import MAX_TOKENS_LIMIT, MAX_USD_LIMIT, KeyLimits
from shared.core.responses_policy import ResponsesPolicy
from shared.core.routes import Routes, closed_names, route_problems
from shared.core.safety_policy import SafetyPolicy, language_kinds_without_endpoint

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# (context window, max output tokens) of known model families, by the longest matching prefix of an
# endpoint's `model` (docs/openai-compatibility.md). A model of no known family gets the last entry:
# small, so an unknown model is never promised more than it takes; declare its limits instead.
MODEL_LIMITS: dict[str, tuple[int, int]] = {
    "gpt-4o-mini": (128_000, 16_384),
    "gpt-4o": (128_000, 16_384),
    "gpt-4.1": (1_047_576, 32_768),
    "gpt-4-turbo": (128_000, 4_096),
    "gpt-35-turbo": (16_385, 4_096),
    "gpt-3.5-turbo": (16_385, 4_096),
    "gpt-5": (400_000, 128_000),
    "o1": (200_000, 100_000),
    "o3": (200_000, 100_000),
    "o4-mini": (200_000, 100_000),
}
UNKNOWN_MODEL_LIMITS = (8_192, 4_096)
# The longest a non-streamed answer may take: Azure's HTTP front end drops a response that has sent
# nothing for 230 s, so admission, the call and its margin must fit below that (docs/accounting.md).
RESPONSE_LIMIT_S = 220.0
# The slowest generation an endpoint is taken to be healthy at, unless it declares its own: a
# non-streamed attempt's time limit is its output cap x n at this pace, plus MODEL_TIMEOUT_S. At 40
# tokens a second a whole answer of up to 8,000 tokens fits the 220 s (docs/accounting.md).
SLOWEST_TOKENS_PER_S = 40.0
# The ring of lease slots in every budget window document, `l0`..`l15` (shared/state/budget.py): a
# slot is reused only after its bucket ended, so the ring must outlast the longest lease plus 2 slots.
BUDGET_SLOTS = 16


@functools.cache  # configured model names only: a handful, read on every OpenAI-compatible request
def model_limits(model: str) -> tuple[int, int]:
    """The (context window, max output tokens) of a model family, or the small unknown default."""
    matches = [prefix for prefix in MODEL_LIMITS if model.lower().startswith(prefix)]
    return MODEL_LIMITS[max(matches, key=len)] if matches else UNKNOWN_MODEL_LIMITS


class EndpointConfig(BaseModel):
    """One model endpoint from `AI_ENDPOINTS` (docs/settings.md)."""

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(min_length=1)
    kind: Literal["azure_openai", "openai"]
    endpoint: str = Field(min_length=1)
    deployment: str = ""
    model: str = Field(min_length=1)
    priority: int = 0
    weight: float = Field(default=1.0, gt=0)
    api_key_secret: str | None = None
    api_version: str = "2024-10-21"
    # The same account's embedding deployment (Azure) or model (OpenAI), for the semantic cache.
    embedding_deployment: str | None = None
    embedding_model: str | None = None  # the embedding model's name, as OpenAI clients ask for it (docs/settings.md)
    # The model's limits, in tokens; absent: the model family's (MODEL_LIMITS).
    context_window: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    # The slowest pace (output tokens a second) at which this endpoint still counts as generating:
    # a non-streamed attempt's time limit follows from it (docs/accounting.md, "Time limits").
    slowest_tokens_per_s: float = Field(default=SLOWEST_TOKENS_PER_S, gt=0)

    @model_validator(mode="after")
    def _azure_needs_deployment(self) -> EndpointConfig:
        if self.kind == "azure_openai" and not self.deployment:
            raise ValueError(f"endpoint {self.name!r}: kind azure_openai needs a deployment")
        return self

    @model_validator(mode="after")
    def _output_fits_the_window(self) -> EndpointConfig:
        if self.limits[1] > self.limits[0]:
            raise ValueError(f"endpoint {self.name!r}: max_output_tokens is larger than context_window")
        return self

    @property
    def limits(self) -> tuple[int, int]:
        """(context window, max output tokens): as declared, else the model family's."""
        window, output = model_limits(self.model)
        return self.context_window or window, self.max_output_tokens or output


class TenantKey(BaseModel):
    """An API key, stored only as its SHA-256 hex digest."""

    model_config = {"extra": "forbid", "frozen": True}

    id: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Tenants at run time (docs/admin.md): when the key stops working, its own limits, when it was made.
    expires: datetime | None = None
    limits: KeyLimits | None = None
    created: datetime | None = None


class TenantLimits(BaseModel):
    """A tenant's limits; an absent (null) limit means none. Windows reset at 00:00 UTC."""

    model_config = {"extra": "forbid", "frozen": True}

    # Bounded (MAX_TOKENS_LIMIT, MAX_USD_LIMIT): a USD limit is counted in micro-USD, and 1e308 of them
    # is no number (the admin API's fuzzing found it).
    daily_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    monthly_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    daily_usd: float | None = Field(default=None, ge=0, le=MAX_USD_LIMIT)
    monthly_usd: float | None = Field(default=None, ge=0, le=MAX_USD_LIMIT)
    rpm: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)  # requests per minute, per key
    tpm: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)  # tokens per minute (prompt + max_tokens), per key
    allowed_models: tuple[str, ...] | None = None  # None: every configured model
    cache_ttl_s: int = Field(default=3600, ge=0)  # 0: this tenant's answers are never cached
    # The largest request (prompt estimate + completion cap x n) an OpenAI-compatible call may make.
    max_request_tokens: int | None = Field(default=None, ge=1)
    # Non-streamed calls of this tenant allowed at once, per instance, whose time limit is longer
    # than REQUEST_DEADLINE_S: long calls hold a worker's connections for minutes.
    max_long_calls: int = Field(default=4, ge=1)


class EntraPrincipal(BaseModel):
    """An Entra ID caller of a tenant: an application (`client_id`, matched against the token's
    `azp` or `appid`) or one user or service principal (`oid`), always within its directory `tid`."""

    # The rule of _one_identifier, for the admin API's OpenAPI document (docs/admin.md).
    model_config = {"extra": "forbid", "frozen": True, "json_schema_extra": {"oneOf": [
        {"required": ["client_id"], "properties": {"client_id": {"type": "string"}, "oid": {"type": "null"}}},
        {"required": ["oid"], "properties": {"oid": {"type": "string"}, "client_id": {"type": "null"}}}]}}

    tid: str = Field(pattern=_GUID)
    client_id: str | None = Field(default=None, pattern=_GUID)
    oid: str | None = Field(default=None, pattern=_GUID)

    @model_validator(mode="after")
    def _one_identifier(self) -> EntraPrincipal:
        if (self.client_id is None) == (self.oid is None):
            raise ValueError("an entra principal names exactly one of client_id or oid")
        return self

    @property
    def match_key(self) -> tuple[str, str, str]:
        return (self.tid.lower(), "oid" if self.oid else "client_id", (self.oid or self.client_id or "").lower())


class TenantConfig(BaseModel):
    """A tenant, its keys (as digests), its Entra principals and its limits."""

    model_config = {"extra": "forbid", "frozen": True}

    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    keys: list[TenantKey] = Field(default_factory=list)
    entra: list[EntraPrincipal] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=lambda: ["user"])
    limits: TenantLimits = Field(default_factory=TenantLimits)
    # Opt-in: the tenant's prompts and answers are written in its audit records (docs/telemetry.md).
    log_content: bool = False
    responses: ResponsesPolicy = Field(default_factory=ResponsesPolicy)  # the Responses API (docs/responses.md)
    # Model routes of this tenant's own (docs/routing.md).
    routes: Routes = Field(default_factory=dict, json_schema_extra=closed_names)
    safety: SafetyPolicy = Field(default_factory=SafetyPolicy)  # content safety (docs/safety.md)

    @model_validator(mode="after")
    def _some_credential(self) -> TenantConfig:
        if not self.keys and not self.entra:
            raise ValueError(f"tenant {self.tenant!r} has neither keys nor entra principals")
        return self


def has_usd_limit(tenant: TenantConfig) -> bool:
    """Whether the tenant or one of its keys has a USD limit (which needs every model priced)."""
    return tenant.limits.daily_usd is not None or tenant.limits.monthly_usd is not None or any(
        key.limits is not None and key.limits.daily_usd is not None for key in tenant.keys)


def unpriced_models(settings: Settings) -> list[str]:
    """The configured models MODEL_PRICES has no price for."""
    return sorted({e.model for e in settings.ai_endpoints} - set(settings.model_prices))


class ModelPrice(BaseModel):
    """USD per 1M tokens; so micro-USD per token is the same number."""

    model_config = {"extra": "forbid", "frozen": True}

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)


def hash_api_key(key: str) -> str:
    """The digest a tenant key is stored and compared as."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """A new tenant key: 32 random bytes, URL-safe; only its digest (hash_api_key) is ever stored."""
    return f"aigw-{secrets.token_urlsafe(32)}"


# Where a setting is given: AZURE ones are set by the Bicep in every deployment; LOCAL ones exist
# only for the emulators and must never be set in Azure; TUNING ones have defaults and are optional.
AZURE = {"scope": "azure"}
LOCAL = {"scope": "local"}
TUNING = {"scope": "tuning"}


class Settings(BaseSettings):
    """Every app setting the code reads. Field aliases are the app-setting names; each field's
    `json_schema_extra` says its scope (AZURE, LOCAL or TUNING)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, case_sensitive=True)

    ai_endpoints: Annotated[list[EndpointConfig], Field(alias="AI_ENDPOINTS", min_length=1, json_schema_extra=AZURE)]
    tenants: Annotated[list[TenantConfig], Field(alias="TENANTS", default_factory=list, json_schema_extra=AZURE)]
    cosmos_endpoint: Annotated[str, Field(alias="COSMOS_ENDPOINT", min_length=1, json_schema_extra=AZURE)]
    # Only for the local emulator; in Azure, Cosmos is reached through managed identity.
    cosmos_key: Annotated[SecretStr | None, Field(alias="COSMOS_KEY", json_schema_extra=LOCAL)] = None
    cosmos_database: Annotated[str, Field(alias="COSMOS_DATABASE", json_schema_extra=AZURE)] = "aigw"
    # Create the database and containers at start (local emulators); in Azure the Bicep does it.
    cosmos_create_containers: Annotated[bool, Field(alias="COSMOS_CREATE_CONTAINERS", json_schema_extra=LOCAL)] = False
    jobs_queue: Annotated[str, Field(alias="JOBS_QUEUE", json_schema_extra=AZURE)] = "ai-jobs"
    # The host's storage, which the app also writes the jobs queue through (re-queues, the sweeper):
    # a connection string only locally (Azurite); in Azure the account name and the identity.
    azure_web_jobs_storage: Annotated[
        SecretStr | None, Field(alias="AzureWebJobsStorage", json_schema_extra=LOCAL)] = None
    storage_account_name: Annotated[
        str | None, Field(alias="AzureWebJobsStorage__accountName", json_schema_extra=AZURE)] = None
    storage_queue_service_uri: Annotated[
        str | None, Field(alias="AzureWebJobsStorage__queueServiceUri", json_schema_extra=TUNING)] = None
    # NCRONTAB (seconds first) of the timer that re-enqueues jobs left queued with no message.
    jobs_sweep_schedule: Annotated[
        str, Field(alias="JOBS_SWEEP_SCHEDULE", pattern=r"^\S+( \S+){4,5}$", json_schema_extra=AZURE)
    ] = "0 * * * * *"
    # A job still queued this long after it was last enqueued has lost its message (see docs/queue.md).
    jobs_stale_after_s: Annotated[float, Field(alias="JOBS_STALE_AFTER_S", ge=1, json_schema_extra=TUNING)] = 300.0
    # Re-enqueues the sweeper tries before it marks such a job failed.
    jobs_sweep_max_requeues: Annotated[
        int, Field(alias="JOBS_SWEEP_MAX_REQUEUES", ge=0, le=100, json_schema_extra=TUNING)] = 3
    key_vault_uri: Annotated[str | None, Field(alias="KEY_VAULT_URI", json_schema_extra=AZURE)] = None
    # Secrets for machines without Key Vault (local dev): JSON {"name": "value"}.
    local_secrets: Annotated[
        dict[str, SecretStr], Field(alias="LOCAL_SECRETS", default_factory=dict, json_schema_extra=LOCAL)
    ]
    # POST /api/_local/reset (docs/breakers.md), for a developer's machine and the tests; refused in Azure.
    local_control: Annotated[bool, Field(alias="LOCAL_CONTROL", json_schema_extra=LOCAL)] = False
    # Key Vault values are re-read after this many seconds, so a rotated secret takes effect
    # without a restart (a 401 from a model endpoint re-reads its key at once).
    secret_ttl_s: Annotated[float, Field(alias="SECRET_TTL_S", gt=0, json_schema_extra=TUNING)] = 300.0
    # The Key Vault SDK checks that a challenge's resource matches the vault's domain; only the
    # local test vault (on 127.0.0.1) needs this off.
    key_vault_verify_challenge_resource: Annotated[
        bool, Field(alias="KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", json_schema_extra=LOCAL)
    ] = True
    # Entra ID callers (docs/identity.md). No audience: Entra tokens are refused, keys still work.
    entra_audiences: Annotated[
        list[str], Field(alias="ENTRA_AUDIENCES", default_factory=list, json_schema_extra=AZURE)
    ]
    entra_authority: Annotated[
        str, Field(alias="ENTRA_AUTHORITY", pattern=r"^https?://[^/?#]+(/[^?#]*)?$", json_schema_extra=AZURE)
    ] = "https://login.microsoftonline.com"
    entra_required_role: Annotated[
        str, Field(alias="ENTRA_REQUIRED_ROLE", min_length=1, json_schema_extra=AZURE)
    ] = "AI.User"
    entra_leeway_s: Annotated[float, Field(alias="ENTRA_LEEWAY_S", ge=0, le=300, json_schema_extra=TUNING)] = 60.0
    # An unknown `kid` refetches the signing keys, at most once per this many seconds per directory.
    entra_jwks_cooldown_s: Annotated[
        float, Field(alias="ENTRA_JWKS_COOLDOWN_S", ge=0, json_schema_extra=TUNING)
    ] = 30.0
    # Client id of the user-assigned managed identity (azure-identity reads the same name).
    azure_client_id: Annotated[str | None, Field(alias="AZURE_CLIENT_ID", json_schema_extra=AZURE)] = None
    # {"model": {"input_per_1m": 0.15, "output_per_1m": 0.60}}: needed for any tenant USD limit.
    model_prices: Annotated[
        dict[str, ModelPrice], Field(alias="MODEL_PRICES", default_factory=dict, json_schema_extra=AZURE)
    ]
    # Model routes every tenant may ask for by name (docs/routing.md); a tenant's own routes win.
    routes: Annotated[Routes, Field(alias="ROUTES", default_factory=dict, json_schema_extra=AZURE)]
    max_request_bytes: Annotated[int, Field(alias="MAX_REQUEST_BYTES", ge=1024, json_schema_extra=TUNING)] = 1_048_576
    # Below REQUEST_DEADLINE_S, so a hanging endpoint times out (and feeds its breaker, then fails
    # over) before the caller's deadline cuts it: the deadline is never held against an endpoint.
    model_timeout_s: Annotated[float, Field(alias="MODEL_TIMEOUT_S", gt=0, json_schema_extra=TUNING)] = 20.0
    # Resilience (issue #3): see README "Resilience settings".
    retry_max_attempts: Annotated[int, Field(alias="RETRY_MAX_ATTEMPTS", ge=1, le=10, json_schema_extra=TUNING)] = 3
    # Stays below the function timeout (host.json) and the 230 s Azure front-end limit on HTTP.
    request_deadline_s: Annotated[
        float, Field(alias="REQUEST_DEADLINE_S", gt=0, le=RESPONSE_LIMIT_S, json_schema_extra=TUNING)
    ] = 30.0
    # The budget's lease on a request's completion allowance is REQUEST_DEADLINE_S plus this margin;
    # it ends in a bucket of BUDGET_SLOT_S seconds, which every instance on one Cosmos account shares.
    # Room held by a process that died returns when its lease ends (docs/accounting.md).
    budget_lease_margin_s: Annotated[
        float, Field(alias="BUDGET_LEASE_MARGIN_S", ge=1, json_schema_extra=TUNING)] = 30.0
    budget_slot_s: Annotated[int, Field(alias="BUDGET_SLOT_S", ge=1, le=60, json_schema_extra=TUNING)] = 20
    # The fixed window a key's `rpm` and `tpm` count in: a minute, unless a test must see one end soon.
    rate_window_s: Annotated[int, Field(alias="RATE_WINDOW_S", ge=1, le=60, json_schema_extra=TUNING)] = 60
    retry_backoff_base_s: Annotated[float, Field(alias="RETRY_BACKOFF_BASE_S", gt=0, json_schema_extra=TUNING)] = 0.5
    retry_backoff_cap_s: Annotated[float, Field(alias="RETRY_BACKOFF_CAP_S", gt=0, json_schema_extra=TUNING)] = 8.0
    retry_budget_ratio: Annotated[float, Field(alias="RETRY_BUDGET_RATIO", ge=0, le=1, json_schema_extra=TUNING)] = 0.2
    retry_budget_window_s: Annotated[float, Field(alias="RETRY_BUDGET_WINDOW_S", gt=0, json_schema_extra=TUNING)] = 60.0
    retry_budget_floor: Annotated[int, Field(alias="RETRY_BUDGET_FLOOR", ge=0, json_schema_extra=TUNING)] = 10
    breaker_consecutive_failures: Annotated[
        int, Field(alias="BREAKER_CONSECUTIVE_FAILURES", ge=1, json_schema_extra=TUNING)
    ] = 5
    breaker_failure_ratio: Annotated[
        float, Field(alias="BREAKER_FAILURE_RATIO", gt=0, le=1, json_schema_extra=TUNING)
    ] = 0.5
    breaker_window_s: Annotated[float, Field(alias="BREAKER_WINDOW_S", gt=0, json_schema_extra=TUNING)] = 30.0
    breaker_min_calls: Annotated[int, Field(alias="BREAKER_MIN_CALLS", ge=1, json_schema_extra=TUNING)] = 10
    breaker_cooldown_s: Annotated[float, Field(alias="BREAKER_COOLDOWN_S", gt=0, json_schema_extra=TUNING)] = 15.0
    breaker_half_open_probes: Annotated[
        int, Field(alias="BREAKER_HALF_OPEN_PROBES", ge=1, json_schema_extra=TUNING)
    ] = 1
    # Semantic cache (issue #4). Cosine similarity: higher = stricter. "scan" where Cosmos has no
    # vector search (the local emulator); "off" disables it.
    semantic_cache_mode: Annotated[
        Literal["vector", "scan", "off"], Field(alias="SEMANTIC_CACHE_MODE", json_schema_extra=TUNING)
    ] = "vector"
    semantic_cache_threshold: Annotated[
        float, Field(alias="SEMANTIC_CACHE_THRESHOLD", gt=0, le=1, json_schema_extra=TUNING)
    ] = 0.70
    semantic_cache_scan_limit: Annotated[
        int, Field(alias="SEMANTIC_CACHE_SCAN_LIMIT", ge=1, le=5000, json_schema_extra=TUNING)
    ] = 200
    # The longest a change to the tenant directory (a key revoked, a limit raised) takes to reach
    # every instance: each re-reads the `tenants` container when its copy is this old (docs/admin.md).
    tenant_refresh_s: Annotated[float, Field(alias="TENANT_REFRESH_S", gt=0, le=300, json_schema_extra=TUNING)] = 10.0
    # /api/ready probes Cosmos and every model endpoint at most once per this period (issue #9).
    ready_refresh_s: Annotated[float, Field(alias="READY_REFRESH_S", gt=0, json_schema_extra=TUNING)] = 5.0
    applicationinsights_connection_string: Annotated[
        str | None, Field(alias="APPLICATIONINSIGHTS_CONNECTION_STRING", json_schema_extra=AZURE)
    ] = None
    # Read by shared/observability/telemetry.py from the environment at start (before settings); declared here so
    # they are validated and documented with the others (docs/telemetry.md).
    otel_exporter_otlp_endpoint: Annotated[
        str | None, Field(alias="OTEL_EXPORTER_OTLP_ENDPOINT", json_schema_extra=TUNING)] = None
    telemetry_offline_storage: Annotated[
        bool, Field(alias="TELEMETRY_OFFLINE_STORAGE", json_schema_extra=TUNING)] = True
    telemetry_live_metrics: Annotated[bool, Field(alias="TELEMETRY_LIVE_METRICS", json_schema_extra=TUNING)] = True
    # Content safety (docs/safety.md): Azure AI Content Safety (Prompt Shields, harm categories) and
    # Azure AI Language (named-entity PII), over the app's identity, or a key named in Key Vault.
    content_safety_endpoint: Annotated[
        str | None, Field(alias="CONTENT_SAFETY_ENDPOINT", pattern=r"^https?://", json_schema_extra=AZURE)] = None
    content_safety_key_secret: Annotated[
        str | None, Field(alias="CONTENT_SAFETY_KEY_SECRET", min_length=1, json_schema_extra=TUNING)] = None
    language_endpoint: Annotated[
        str | None, Field(alias="LANGUAGE_ENDPOINT", pattern=r"^https?://", json_schema_extra=AZURE)] = None
    language_key_secret: Annotated[
        str | None, Field(alias="LANGUAGE_KEY_SECRET", min_length=1, json_schema_extra=TUNING)] = None
    safety_timeout_s: Annotated[float, Field(alias="SAFETY_TIMEOUT_S", gt=0, le=30, json_schema_extra=TUNING)] = 2.0

    @model_validator(mode="after")
    def _language_kinds_need_an_endpoint(self) -> Settings:
        refusal = language_kinds_without_endpoint({t.tenant: t.safety for t in self.tenants}, self.language_endpoint)
        if refusal:
            raise PydanticCustomError("language_endpoint", refusal, {})
        return self

    @field_validator("tenants")
    @classmethod
    def _unique_keys(cls, tenants: list[TenantConfig]) -> list[TenantConfig]:
        seen: set[str] = set()
        for tenant in tenants:
            for key in tenant.keys:
                if key.sha256 in seen:
                    raise ValueError(f"tenant {tenant.tenant!r}: key {key.id!r} is used twice")
                seen.add(key.sha256)
        return tenants

    @field_validator("tenants")
    @classmethod
    def _unique_entra_principals(cls, tenants: list[TenantConfig]) -> list[TenantConfig]:
        owner: dict[tuple[str, str, str], str] = {}
        for tenant in tenants:
            for principal in tenant.entra:
                other = owner.setdefault(principal.match_key, tenant.tenant)
                if other != tenant.tenant:
                    raise ValueError(f"entra principal {principal.match_key[2]} is in tenants {other!r} and "
                                     f"{tenant.tenant!r}")
        return tenants

    @model_validator(mode="after")
    def _prices_for_usd_limits(self) -> Settings:
        usd = [t.tenant for t in self.tenants if has_usd_limit(t)]
        missing = unpriced_models(self) if usd else []
        if missing:
            # A custom error: pydantic would prefix a ValueError with "Value error, ".
            raise PydanticCustomError(
                "missing_price",
                "MODEL_PRICES has no price for {models}, but tenant {tenants} has a USD limit: "
                "add the price to MODEL_PRICES, or remove daily_usd and monthly_usd from the tenant",
                {"models": ", ".join(missing), "tenants": ", ".join(repr(t) for t in usd)},
            )
        return self

    @model_validator(mode="after")
    def _routes_serve(self) -> Settings:
        models, names = _served(self)
        problems = route_problems(self.routes, "ROUTES", models, names, self.model_prices)
        for t in self.tenants:
            problems += route_problems(t.routes, f"TENANTS: tenant {t.tenant!r}", models, names, self.model_prices)
        if problems:
            raise PydanticCustomError("route", "{problems}", {"problems": "; ".join(problems)})
        return self

    @model_validator(mode="after")
    def _lease_fits_the_ring(self) -> Settings:
        if (BUDGET_SLOTS - 2) * self.budget_slot_s <= self.budget_lease_s:
            raise PydanticCustomError(
                "lease_outlasts_ring",
                "BUDGET_SLOT_S x {slots} must be longer than the budget lease, REQUEST_DEADLINE_S + "
                "BUDGET_LEASE_MARGIN_S ({lease} s): raise BUDGET_SLOT_S or lower the other two",
                {"slots": BUDGET_SLOTS - 2, "lease": f"{self.budget_lease_s:g}"},
            )
        return self

    @model_validator(mode="after")
    def _local_control_stays_local(self) -> Settings:
        # App Service and Functions set WEBSITE_INSTANCE_ID on every instance they run.
        if self.local_control and os.environ.get("WEBSITE_INSTANCE_ID"):
            raise PydanticCustomError("local_control", "LOCAL_CONTROL resets the breakers of whoever calls it: it "
                                      "is for a developer's machine and the tests, never on in Azure", {})
        return self

    @field_validator("rate_window_s")
    @classmethod
    def _rate_windows_fill_a_minute(cls, seconds: int) -> int:
        if 60 % seconds:
            raise PydanticCustomError("rate_window", "must divide 60: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60", {})
        return seconds

    @property
    def budget_lease_s(self) -> float:
        """How long a budget reservation holds its completion allowance before it may lapse."""
        return self.request_deadline_s + self.budget_lease_margin_s

    @field_validator("ai_endpoints")
    @classmethod
    def _unique_endpoint_names(cls, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        names = [e.name for e in endpoints]
        if len(names) != len(set(names)):
            raise ValueError("endpoint names must be unique")
        return endpoints


def load_settings() -> Settings:
    """Read and validate the settings; a bad one fails with a message that names the setting."""
    try:
        return Settings()
    except ValidationError as exc:
        # An error about the settings as a whole names its settings in its own message.
        problems = [f"{e['field']}: {e['message']}" if e["field"] else e["message"]
                    for e in field_errors(exc, whole="")]
        names = tuple(dict.fromkeys(str(e["loc"][0]) for e in exc.errors() if e["loc"]))
        raise ConfigError("invalid app settings: " + "; ".join(problems), names) from None
    except SettingsError as exc:
        # pydantic-settings failed to decode a JSON setting; its text names the field, not the setting.
        match = re.search(r'field "([^"]+)"', str(exc))
        field = Settings.model_fields.get(match.group(1)) if match else None
        name = field.alias if field and field.alias else "a JSON setting"
        raise ConfigError(f"invalid app settings: {name}: not valid JSON (a JSON list or object, "
                          "written as one string)", (name,)) from None


def _served(settings: Settings) -> tuple[set[str], set[str]]:
    """The configured models, and every name a client may ask for one by (a route may take none of them)."""
    models = {e.model for e in settings.ai_endpoints}
    return models, models | {n for e in settings.ai_endpoints for n in (e.name, e.deployment, e.embedding_deployment)
                             if n}


def policy_problems(settings: Settings, tenant: TenantConfig) -> list[tuple[str, str]]:
    """What this app cannot serve of one tenant's policies, as (field, why): the checks TENANTS gets
    at start, for a tenant the admin API writes at run time."""
    models, names = _served(settings)
    problems = [("routes", why) for why in route_problems(tenant.routes, f"tenant {tenant.tenant!r}", models, names,
                                                          settings.model_prices)]
    refusal = language_kinds_without_endpoint({tenant.tenant: tenant.safety}, settings.language_endpoint)
    return problems + ([("safety", refusal)] if refusal else [])
