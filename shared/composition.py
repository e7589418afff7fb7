"""Builds the composition root: the credential and every client, once per worker process.

Its imports are the heavy ones (the Azure SDKs): shared/container.py imports this module in a
background thread right after the function index is built, and awaits it before the first
container is built. Semantic Kernel and the openai SDK are not among them: the native paths load
them on first use (shared/upstream/engine.LazyEngine).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AsyncHttpTransport

from shared.admin.service import AdminService, build_directory
from shared.core.clock import Clock, SystemClock, utc
from shared.core.settings import Settings
from shared.identity.auth import Authenticator
from shared.identity.secrets import KeyVaultSecrets, LocalSecrets, SecretProvider
from shared.jobs.deadletter import CosmosDeadLetters
from shared.jobs.queue import JobQueue, storage_job_queue
from shared.jobs.service import CosmosJobStore, JobService
from shared.pipeline.gateway import Gateway
from shared.pipeline.guard import Guard
from shared.pipeline.routes import Router
from shared.readiness import Readiness, probe_dependencies
from shared.state.activity import CosmosActivity
from shared.state.budget import CosmosBudgetLedger
from shared.state.cache import CosmosExactCache, TieredCache
from shared.state.cosmos import CosmosState, cosmos_client
from shared.state.ratelimit import CosmosRateLimiter
from shared.state.semantic_cache import SemanticCache, SemanticCacheSettings, vector_index
from shared.upstream.embeddings import EndpointEmbedder, embedding_endpoints
from shared.upstream.endpoints import Endpoint, embedding_endpoint_name
from shared.upstream.engine import LazyEngine
from shared.upstream.groups import ModelGroups
from shared.upstream.pool import tls_context
from shared.upstream.resilience.breaker import BreakerSettings
from shared.upstream.resilience.policy import ResiliencePolicy, RetrySettings
from shared.upstream.resilience.pool import EndpointPool
from shared.upstream.resilience.retry_budget import RetryBudget
from shared.upstream.spans import ATTEMPT_SPANS
from shared.upstream.wire import build_wire

if TYPE_CHECKING:
    import httpx

    from shared.identity.entra import EntraValidator


log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    credential: AsyncTokenCredential | None
    secrets: SecretProvider
    cosmos: CosmosState
    groups: ModelGroups
    engine: LazyEngine  # Semantic Kernel, for the native paths: built on first use
    gateway: Gateway
    jobs: JobService
    auth: Authenticator
    budget: CosmosBudgetLedger
    job_queue: JobQueue
    deadletters: CosmosDeadLetters
    readiness: Readiness
    http: httpx2.AsyncClient  # the readiness probes' one client
    entra_http: httpx.AsyncClient | None = None
    # The clients of the model and embedding endpoints, closed with the container (an unclosed one
    # is closed by the garbage collector after its event loop, with a traceback).
    model_clients: list[Any] = field(default_factory=list)
    safety_clients: list[Any] = field(default_factory=list)  # Azure AI Content Safety and Language, if set
    admin: AdminService | None = None  # the admin API's service (tenants at run time, docs/admin.md)

    async def close(self) -> None:
        await self.job_queue.close()
        await self.http.aclose()
        await self.cosmos.close()
        await self.secrets.close()
        if self.entra_http is not None:
            await self.entra_http.aclose()
        await self.engine.close()
        for client in [*self.model_clients, *self.safety_clients]:
            await client.close()
        if self.credential is not None:
            await self.credential.close()



def build_policy(settings: Settings, clock: Clock) -> ResiliencePolicy:
    """One policy per process: breakers and the retry budget are shared by every request."""
    breaker = BreakerSettings(
        consecutive_failures=settings.breaker_consecutive_failures, failure_ratio=settings.breaker_failure_ratio,
        window_s=settings.breaker_window_s, min_calls=settings.breaker_min_calls,
        cooldown_s=settings.breaker_cooldown_s, half_open_probes=settings.breaker_half_open_probes,
    )
    names = [e.name for e in settings.ai_endpoints]
    names += [embedding_endpoint_name(e.name) for e in settings.ai_endpoints if e.embedding_deployment]
    pool = EndpointPool(names, breaker, clock, events=ATTEMPT_SPANS)
    budget = RetryBudget(clock, ratio=settings.retry_budget_ratio, window_s=settings.retry_budget_window_s,
                         floor=settings.retry_budget_floor)
    retry = RetrySettings(max_attempts=settings.retry_max_attempts, deadline_s=settings.request_deadline_s,
                          backoff_base_s=settings.retry_backoff_base_s, backoff_cap_s=settings.retry_backoff_cap_s,
                          attempt_base_s=settings.model_timeout_s)
    return ResiliencePolicy(pool, budget, retry, clock, events=ATTEMPT_SPANS)


def build_semantic_cache(settings: Settings, cosmos: CosmosState, chat: list[Endpoint],
                         clock: Clock) -> SemanticCache | None:
    """None when turned off or when no endpoint has an embedding deployment. The embeddings go over
    the chat endpoints' own wires."""
    if settings.semantic_cache_mode == "off":
        return None
    endpoints = embedding_endpoints(chat, timeout_s=min(5.0, settings.model_timeout_s))
    if not endpoints:
        log.info("semantic cache off: no endpoint has an embedding_deployment")
        return None
    config = SemanticCacheSettings(threshold=settings.semantic_cache_threshold,
                                   scan_limit=settings.semantic_cache_scan_limit, mode=settings.semantic_cache_mode)
    return SemanticCache(cosmos, EndpointEmbedder(endpoints, clock=clock), vector_index(config), config)


def build_guard(settings: Settings, credential: AsyncTokenCredential | None, secrets: SecretProvider,
                clock: Clock) -> tuple[Guard, list[Any]]:
    """The guard stage: its built-in layers always; Azure AI Content Safety and Language where their
    endpoints are set (over the app's identity, or a key named in Key Vault). Also the clients to close."""
    from shared.moderation.screening import Screening  # noqa: PLC0415

    content_safety = language = None
    if settings.content_safety_endpoint:
        from shared.moderation.contentsafety import ContentSafety  # noqa: PLC0415  the SDK only where it is used
        from shared.moderation.service import KeyOrIdentity  # noqa: PLC0415

        content_safety = ContentSafety(settings.content_safety_endpoint,
                                       KeyOrIdentity(credential, secrets, settings.content_safety_key_secret),
                                       clock, settings.safety_timeout_s)
    if settings.language_endpoint:
        from shared.moderation.language import Language  # noqa: PLC0415
        from shared.moderation.service import KeyOrIdentity  # noqa: PLC0415

        language = Language(settings.language_endpoint,
                            KeyOrIdentity(credential, secrets, settings.language_key_secret),
                            clock, settings.safety_timeout_s)
    return Guard(Screening(content_safety), language), [c for c in (content_safety, language) if c is not None]


def _needs_credential(settings: Settings) -> bool:
    return (
        (settings.content_safety_endpoint is not None and settings.content_safety_key_secret is None)
        or (settings.language_endpoint is not None and settings.language_key_secret is None)
        or settings.cosmos_key is None
        or settings.key_vault_uri is not None
        or any(e.kind == "azure_openai" and not e.api_key_secret for e in settings.ai_endpoints)
        or settings.azure_web_jobs_storage is None  # the jobs queue through the identity
    )


def _freeze_sdk_tracing_settings() -> None:
    """Every Azure SDK call asks azure-core whether to trace, reading the environment each time (a
    twentieth of the hot path's CPU in a profile). Telemetry is set up before the first container,
    so the answer is fixed from here on: keep it as an explicit setting, which azure-core reads
    without the environment."""
    from azure.core.settings import settings  # noqa: PLC0415

    settings.tracing_implementation = settings.tracing_implementation()
    settings.tracing_enabled = settings.tracing_enabled()


async def build_container(settings: Settings, cosmos_transport: AsyncHttpTransport[Any, Any] | None = None,
                          clock: Clock | None = None) -> Container:
    """Every client, once; `clock` the one every part reads time from (the system's by default)."""
    _freeze_sdk_tracing_settings()
    clock = clock or SystemClock()
    credential: AsyncTokenCredential | None = None
    if _needs_credential(settings):
        # In Azure: the user-assigned managed identity (AZURE_CLIENT_ID); on a developer's
        # machine: their `az login`, so `make run` can use real resources too.
        from azure.identity.aio import DefaultAzureCredential  # noqa: PLC0415  only where an identity is used

        credential = DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)
    secrets: SecretProvider
    if settings.key_vault_uri:
        assert credential is not None  # noqa: S101
        from azure.keyvault.secrets.aio import SecretClient  # noqa: PLC0415  only where Key Vault is used

        secrets = KeyVaultSecrets(
            SecretClient(settings.key_vault_uri, credential,
                         verify_challenge_resource=settings.key_vault_verify_challenge_resource),
            ttl_s=settings.secret_ttl_s, clock=clock.now,
        )
    else:
        secrets = LocalSecrets(settings.local_secrets)
    cosmos = CosmosState(cosmos_client(settings, credential, cosmos_transport), settings.cosmos_database,
                         settings.cosmos_create_containers)
    endpoints = [
        Endpoint(cfg, await build_wire(cfg, credential=credential, secrets=secrets,
                                       timeout_s=settings.model_timeout_s, clock=clock))
        for cfg in settings.ai_endpoints
    ]
    groups = ModelGroups(endpoints, build_policy(settings, clock))
    engine = LazyEngine(groups, credential=credential, secrets=secrets, timeout_s=settings.model_timeout_s)
    budget = CosmosBudgetLedger(cosmos, settings.model_prices, lease_s=settings.budget_lease_s,
                                slot_s=settings.budget_slot_s, now=utc(clock))
    clients: list[Any] = [e.wire for e in endpoints]
    semantic = build_semantic_cache(settings, cosmos, endpoints, clock)
    cache = TieredCache(CosmosExactCache(cosmos, clock.wall), semantic, clock.wall)
    rate_limiter = CosmosRateLimiter(cosmos, now=utc(clock), window_s=settings.rate_window_s)
    guard, safety_clients = build_guard(settings, credential, secrets, clock)
    activity = CosmosActivity(cosmos, clock.wall, clock.sleep)
    gateway = Gateway(engine, rate_limiter, budget, cache, clock=clock,
                      router=Router(settings.routes, groups, settings.model_prices), guard=guard, activity=activity)
    job_queue = storage_job_queue(settings, credential)
    jobs = JobService(CosmosJobStore(cosmos, clock.wall), gateway, lease_s=settings.model_timeout_s * 2,
                      queue=job_queue, refusals=(rate_limiter.over, budget.spent), wall=clock.wall)
    entra, entra_http = build_entra(settings, clock)
    directory, admin = build_directory(settings, cosmos, clock, activity.last_hour)
    auth = Authenticator(directory, entra, settings.entra_required_role, clock.wall)
    http = httpx2.AsyncClient(timeout=3, verify=tls_context())
    probe = functools.partial(probe_dependencies, cosmos, isinstance(secrets, KeyVaultSecrets),
                              {e.name: e.config.endpoint for e in groups.endpoints()}, http)
    return Container(settings, credential, secrets, cosmos, groups, engine, gateway, jobs, auth, budget, job_queue,
                     CosmosDeadLetters(cosmos), Readiness(probe, settings.ready_refresh_s, clock.now), http, entra_http,
                     clients, safety_clients, admin)


def build_entra(settings: Settings, clock: Clock) -> tuple[EntraValidator | None, httpx.AsyncClient | None]:
    """The Entra token validator, when ENTRA_AUDIENCES names this API; None: tokens are refused."""
    if not settings.entra_audiences:
        return None, None
    import httpx  # noqa: PLC0415  PyJWT, cryptography and httpx only where Entra tokens are taken

    from shared.identity.entra import EntraValidator, SigningKeys  # noqa: PLC0415
    http = httpx.AsyncClient(timeout=5.0, verify=tls_context())
    keys = SigningKeys(settings.entra_authority, http, cooldown_s=settings.entra_jwks_cooldown_s, clock=clock.now)
    tids = {p.tid for t in settings.tenants for p in t.entra}
    validator = EntraValidator(keys, authority=settings.entra_authority, audiences=settings.entra_audiences,
                               tids=tids, leeway_s=settings.entra_leeway_s)
    return validator, http
