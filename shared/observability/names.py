"""Every span, attribute, metric and audit field name the app emits: the one list dashboards and alerts query.

GenAI names follow OpenTelemetry semantic conventions v1.41 as the SDKs emit them; ours are under
`aigw.`. infra/ queries these names, and a test checks each queried name is one listed here.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# Span names: the server span per request is "<METHOD> <route>", per job "process <queue>";
# the client span per model attempt is "<operation> <model>" (the GenAI convention).
JOB_SPAN_PREFIX: Final = "process"

# GenAI attributes (semantic-conventions v1.41).
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"  # chat | embeddings | text_completion
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"  # azure.ai.openai | openai
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"  # noqa: S105  input | output (a dimension of the token metric)
SERVER_ADDRESS: Final = "server.address"
ERROR_TYPE: Final = "error.type"

PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"
PROVIDER_OPENAI: Final = "openai"

# Ours, on the model-attempt span.
ENDPOINT: Final = "aigw.endpoint"
REGION: Final = "aigw.region"
ATTEMPT: Final = "aigw.attempt"
BREAKER_STATE: Final = "aigw.breaker.state"
RETRY_WAIT_S: Final = "aigw.retry.wait_s"
TIME_TO_FIRST_CHUNK_S: Final = "aigw.time_to_first_chunk_s"

# Ours, on the server span (request or job) and in the audit record.
TENANT: Final = "aigw.tenant"
KEY_ID: Final = "aigw.key_id"
ROUTE: Final = "aigw.route"
CACHE_RESULT: Final = "aigw.cache.result"  # one of CACHE_RESULTS
CORRELATION_ID: Final = "aigw.correlation_id"
JOB_ID: Final = "aigw.job.id"
OUTCOME: Final = "aigw.outcome"
REFUSAL_TYPE: Final = "aigw.refusal.type"  # budget-exhausted | budget-busy | rate-limited
COST_USD: Final = "aigw.cost_usd"
DURATION_MS: Final = "aigw.duration_ms"  # the same name as in AUDIT_FIELDS
STATUS: Final = "aigw.status"  # the HTTP status (a job: the status its outcome maps to)
QUEUE: Final = "aigw.queue"
# Model routing (docs/routing.md), on the server span and in the audit record of a routed request.
ROUTING_ROUTE: Final = "aigw.routing.route"  # the route asked for as the model
ROUTING_TIER: Final = "aigw.routing.tier"  # simple | complex: the tier of the model that ran
ROUTING_SCORE: Final = "aigw.routing.score"  # the complexity score, 0..1
ROUTING_FALLBACK: Final = "aigw.routing.fallback"  # true: the scored tier was down, the other ran
ROUTING_SECOND_OPINION: Final = "aigw.routing.second_opinion"  # simple | complex: a judging model's verdict

# Standard HTTP attributes on the server span (App Insights fills `requests` url/resultCode from them).
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
URL_SCHEME: Final = "url.scheme"

# Job outcomes (aigw.outcome on the job span and the aigw.jobs metric): the type of every value set.
JobOutcome = Literal["succeeded", "failed", "requeued", "retry", "ignored"]
JOB_OUTCOMES: Final = get_args(JobOutcome)

CACHE_RESULTS: Final = ("exact_hit", "semantic_hit", "stale", "miss", "bypass")

# Metrics: the two GenAI client metrics, then ours (dimensions: tenant, model, endpoint, outcome).
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # noqa: S105  histogram, {token}
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"  # histogram, s
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"  # histogram, s
METRIC_COST: Final = "aigw.cost"  # counter, USD
METRIC_TOKENS_CHARGED: Final = "aigw.tokens.charged"  # counter, {token}, what the budget was charged
METRIC_CACHE_LOOKUPS: Final = "aigw.cache.lookups"  # counter, by CACHE_RESULT
METRIC_REFUSALS: Final = "aigw.refusals"  # counter, by REFUSAL_TYPE
METRIC_BREAKER_TRANSITIONS: Final = "aigw.breaker.transitions"  # counter, by endpoint and new state
METRIC_RETRIES: Final = "aigw.retries"  # counter, by endpoint
METRIC_FAILOVERS: Final = "aigw.failovers"  # counter, by the endpoint failed away from
METRIC_JOBS: Final = "aigw.jobs"  # counter, by OUTCOME
METRIC_JOB_AGE: Final = "aigw.job.age"  # histogram, s from submission to the end of processing
# Counter, USD, by tenant, route and model: the route's complex model's cost for the same usage
# minus what was charged (zero on the complex model itself).
METRIC_ROUTING_SAVINGS: Final = "aigw.routing.savings_usd"
# Gauge per tenant and window (day | month) and unit (tokens | usd), set at each settlement: used / limit.
METRIC_BUDGET_USED_RATIO: Final = "aigw.budget.used_ratio"
BUDGET_WINDOW: Final = "aigw.budget.window"
# Content safety (docs/safety.md): a CLIENT span per call to Azure AI Content Safety or Language,
# counters of blocks, redactions and unchecked requests by tenant and kind, and the audit fields
# saying what was blocked, flagged or redacted (kinds and counts, never text).
SAFETY_SPAN_PREFIX: Final = "safety"  # "safety shieldPrompt", "safety analyzeText", "safety recognizePii"
SAFETY_KIND: Final = "aigw.safety.kind"  # jailbreak | indirect_attack | hate | ... | secrets | email | ...
SAFETY_SERVICE: Final = "aigw.safety.service"  # content_safety | language
METRIC_SAFETY_BLOCKS: Final = "aigw.safety.blocks"  # counter, by tenant and SAFETY_KIND
METRIC_SAFETY_REDACTIONS: Final = "aigw.safety.redactions"  # counter, by tenant and SAFETY_KIND
METRIC_SAFETY_UNCHECKED: Final = "aigw.safety.unchecked"  # counter, by tenant and SAFETY_SERVICE (on_error open)
AUDIT_SAFETY_BLOCKED: Final = "aigw.safety.blocked"  # the kinds that blocked the request
AUDIT_SAFETY_FLAGGED: Final = "aigw.safety.flagged"  # the kinds detected under `annotate`
AUDIT_SAFETY_REDACTED: Final = "aigw.safety.redacted"  # {"kind": count} of the answer (and input)
AUDIT_SAFETY_UNCHECKED: Final = "aigw.safety.unchecked"  # the services that failed (served: on_error open)
BUDGET_UNIT: Final = "aigw.budget.unit"

# The audit record: one structured log line per request, on this logger, with these fields.
AUDIT_LOGGER: Final = "aigw.audit"
AUDIT_EVENT: Final = "aigw.request"
AUDIT_FIELDS: Final = (TENANT, KEY_ID, GEN_AI_REQUEST_MODEL, ENDPOINT, GEN_AI_USAGE_INPUT_TOKENS,
                       GEN_AI_USAGE_OUTPUT_TOKENS, COST_USD, "aigw.duration_ms", "aigw.status", CACHE_RESULT,
                       CORRELATION_ID, ROUTE)
# In the audit record of a routed request only.
AUDIT_ROUTING_FIELDS: Final = (ROUTING_ROUTE, ROUTING_TIER, ROUTING_SCORE, ROUTING_FALLBACK, ROUTING_SECOND_OPINION)
# Only for a tenant with `log_content: true` (TENANTS): the prompt and the answer, in the audit record.
AUDIT_PROMPT: Final = "aigw.content.prompt"
AUDIT_ANSWER: Final = "aigw.content.answer"
# The admin API's audit record (docs/admin.md): one line per change, on AUDIT_LOGGER.
ADMIN_EVENT: Final = "aigw.admin"
ADMIN_ACTION: Final = "aigw.admin.action"  # tenant.create | tenant.update | tenant.disable | key.create | ...
ADMIN_CALLER: Final = "aigw.admin.caller"  # <tenant>/<key id> of an admin key, or entra:<oid>
