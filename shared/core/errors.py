"""The application's error tree: what a caller did wrong, or what failed on our side, as a status."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


class ConfigError(Exception):
    """A setting is missing or invalid; raised at start, never at a client. `settings` names the
    invalid app settings (never their values), for /api/ready."""

    def __init__(self, message: str, settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings = settings


class AppError(Exception):
    """Base of every error the request path turns into a problem+json response.

    `detail` is written for the client: it never carries an exception's text or a provider's
    raw error. Subclasses fix the status and title.
    """

    status: int = 500
    title: str = "Internal Server Error"
    type_slug: str = "internal"

    def __init__(self, detail: str, *, retry_after_s: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        # Response headers the error itself calls for (WWW-Authenticate, x-should-retry).
        self.headers = dict(headers or {})

    @property
    def type_uri(self) -> str:
        return f"https://aigw.dev/problems/{self.type_slug}"


class BadRequest(AppError):
    """`param` names the request field at fault, when one is (OpenAI's error shape carries it)."""

    status, title, type_slug = 400, "Bad Request", "bad-request"

    def __init__(self, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail)
        self.param = param


class ContextLengthExceeded(BadRequest):
    """The prompt and the completion cap do not fit the model's context window or the tenant's limit."""

    type_slug = "context-length-exceeded"


class ValidationFailed(BadRequest):
    """The body parsed but does not fit the schema; `errors` names each field."""

    type_slug = "validation"

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail, param=errors[0]["field"] if errors else None)
        self.errors = errors


class Unauthorized(AppError):
    """No or bad credentials; `headers` carries the WWW-Authenticate challenge (RFC 9110 11.6.1)."""

    status, title, type_slug = 401, "Unauthorized", "unauthorized"


class Forbidden(AppError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(AppError):
    status, title, type_slug = 404, "Not Found", "not-found"


class ModelNotFound(NotFound):
    """The model, deployment or embedding deployment a request names is not served here."""

    type_slug = "model-not-found"


class Conflict(AppError):
    """The change clashes with what exists (a tenant of that name, a concurrent change)."""

    status, title, type_slug = 409, "Conflict", "conflict"


class MethodNotAllowed(AppError):
    status, title, type_slug = 405, "Method Not Allowed", "method-not-allowed"


class PayloadTooLarge(AppError):
    status, title, type_slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(AppError):
    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"


class TooManyRequests(AppError):
    """Rate limit or budget; always carries a Retry-After."""

    status, title, type_slug = 429, "Too Many Requests", "too-many-requests"

    def __init__(self, detail: str, *, retry_after_s: float, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, headers=headers)


class RateLimited(TooManyRequests):
    """The key is over its RPM or TPM: Retry-After runs to the next window."""

    type_slug = "rate-limited"


class BudgetRefusal(TooManyRequests):
    """A budget refused: `scope` says whose, the tenant's or the key's own (docs/admin.md)."""

    def __init__(self, detail: str, *, retry_after_s: float, headers: dict[str, str] | None = None,
                 scope: str = "tenant") -> None:
        super().__init__(detail, retry_after_s=retry_after_s, headers=headers)
        self.scope = scope


class BudgetBusy(BudgetRefusal):
    """The budget has room, but requests in flight hold it: retry shortly (Retry-After <= 60 s)."""

    type_slug = "budget-busy"


class BudgetExhausted(BudgetRefusal):
    """The window cannot fit the request even with nothing in flight: no retry helps before the reset.

    `x-should-retry: false` tells the official OpenAI SDKs not to retry (they retry every 429 otherwise).
    """

    type_slug = "budget-exhausted"

    def __init__(self, detail: str, *, retry_after_s: float, headers: dict[str, str] | None = None,
                 scope: str = "tenant") -> None:
        super().__init__(detail, retry_after_s=retry_after_s, headers={**(headers or {}), "x-should-retry": "false"},
                         scope=scope)


@dataclass(frozen=True)
class ProviderError:
    """A provider's 400 as a client may see it: its message, field and code, already cleaned of
    anything naming our deployments, regions or keys (shared/upstream/failures.provider_error)."""

    message: str
    param: str | None = None
    code: str | None = None


class UpstreamRefused(AppError):
    """The model endpoint refused the request as invalid (a 400 from the provider, content filter).

    Not retryable. `detail` is generic (the native API never shows a provider's words); `provider`
    is the provider's cleaned error, which the OpenAI-compatible routes answer with.
    """

    status, title, type_slug = 400, "Bad Request", "model-refused"

    def __init__(self, detail: str, *, provider: ProviderError | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, headers=headers)
        self.provider = provider




class ContentFiltered(BadRequest):
    """The tenant's content-safety policy blocked the request (docs/safety.md). `result` says what
    was detected, in Azure OpenAI's `content_filter_result` shape: categories and rule names, never text."""

    type_slug = "content-filtered"

    def __init__(self, detail: str, result: dict[str, dict[str, object]]) -> None:
        super().__init__(detail, param="prompt")
        self.result = result


class ServiceUnavailable(AppError):
    """No model endpoint could answer and there is no fallback."""

    status, title, type_slug = 503, "Service Unavailable", "unavailable"

    def __init__(self, detail: str, *, retry_after_s: float = 5.0, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, headers=headers)


class UpstreamThrottled(TooManyRequests, ServiceUnavailable):
    """No model endpoint could answer because every one answered 429. Both kinds at once: a 429
    with Retry-After (clients retry after the soonest endpoint frees up; a queued job is re-queued
    with that delay), and an endpoint failure (a stale answer still beats it, as it beats a 503)."""

    status, title, type_slug = 429, "Too Many Requests", "upstream-throttled"


class DependencyFailed(AppError):
    """A dependency of ours (Cosmos, Storage, Key Vault) failed; transient from the caller's view."""

    status, title, type_slug = 503, "Service Unavailable", "dependency-unavailable"

    def __init__(self, detail: str, *, retry_after_s: float = 5.0) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)


class SafetyUnavailable(DependencyFailed):
    """The content-safety service failed or was slow and the tenant's policy is `on_error: closed`."""

    type_slug = "content-safety-unavailable"


class NotConfigured(DependencyFailed):
    """The app settings are invalid: every request is a 503; /api/ready names the settings."""

    def __init__(self, settings: tuple[str, ...]) -> None:
        names = ", ".join(settings) or "unknown"
        super().__init__(f"The service is not configured correctly (invalid app settings: {names}).")
        self.settings = settings


def field_errors(exc: ValidationError, *, prefix: str = "", whole: str = "body") -> list[dict[str, str]]:
    """Each validation error as {field, message}: the field's dotted path under `prefix`, or
    `whole` when the error is about the value as a whole. Messages are pydantic's, never input."""
    return [
        {"field": ".".join(([prefix] if prefix else []) + [str(p) for p in e["loc"]]) or whole, "message": e["msg"]}
        for e in exc.errors()
    ]


def validation_failed(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    """A body that does not fit its schema, as the 400 that names each field (never the input)."""
    errors = field_errors(exc, prefix=prefix)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return ValidationFailed(f"The request is invalid. {detail}", errors)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes: Semantic Kernel wraps the SDK's exception, which wraps
    the transport's."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


class ResponseNotFound(NotFound):
    """A stored response id that is not the caller's tenant's (or no longer exists): the same 404
    either way, so an id that leaked says nothing of who owns it."""

    type_slug = "response-not-found"


class ResponseOriginUnavailable(ServiceUnavailable):
    """A follow-up's origin endpoint (the only one that knows the response) cannot be reached now."""

    type_slug = "response-origin-unavailable"
