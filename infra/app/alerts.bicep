// The gateway's alerts: error rate, model latency p95, 429 rate, a tenant's budget at 80%, a breaker open, poison jobs.
// Every name the queries use is one shared/telemetry_names.py defines (tests/infra/test_telemetry_names.py);
// docs/runbook.md says what to do when each fires.

param location string = resourceGroup().location
param tags object = {}
param resourceToken string
param appInsightsId string

@description('E-mail address of the on-call operator.')
param alertEmail string

@description('Queue whose arrivals mean a job failed every retry.')
param poisonQueueName string

@description('Alert when more than this percentage of requests fail with a 5xx status.')
param failedRequestPercent int = 5

@description('Alert when the 95th percentile of a model\'s attempt latency exceeds this many milliseconds (streams: time to first chunk).')
param modelLatencyP95Ms int = 5000

@description('Alert when more than this percentage of requests are answered 429 (rate limit or budget).')
param throttledRequestPercent int = 10

@description('Alert when a tenant has used this percentage of a token or USD budget (day or month).')
param budgetUsedPercent int = 80

@description('Ignore windows with fewer requests (or model attempts) than this: one failure out of three requests is not an incident.')
param minRequests int = 20

// The app's own server spans carry aigw.route (the Functions host's per-invocation records do not), and
// probes are answered without touching any dependency: counting them would dilute every rate.
var appRequests = join([
  'requests'
  '| where isnotempty(tostring(customDimensions["aigw.route"]))'
  '| where tostring(customDimensions["aigw.route"]) !in ("health", "ready")'
  // Queue job deliveries are server spans too ("process <queue>"); a retried delivery is not a failed request.
  '| where name !startswith "process "'
], '\n')

var rules = [
  {
    name: 'failed-requests'
    dimensions: []
    displayName: 'AI gateway: error rate'
    description: 'More than ${failedRequestPercent}% of requests answered 5xx in 15 minutes (at least ${minRequests} requests).'
    severity: 1
    query: join([
      appRequests
      '| summarize total = count(), failed = countif(toint(resultCode) >= 500)'
      '| where total >= ${minRequests} and 100.0 * failed / total > ${failedRequestPercent}'
    ], '\n')
  }
  {
    // Model attempts, not requests: a request's duration includes a long streamed answer, budget waits and
    // cache hits; the attempt span is what the provider did. A stream counts its time to first chunk.
    name: 'model-latency-p95'
    dimensions: [
      'model'
    ]
    displayName: 'AI gateway: model latency p95'
    description: 'p95 latency of a model\'s attempts above ${modelLatencyP95Ms} ms in 15 minutes (streams: time to first chunk; at least ${minRequests} attempts).'
    severity: 2
    query: join([
      'dependencies'
      '| where isnotempty(tostring(customDimensions["gen_ai.operation.name"]))'
      '| extend model = tostring(customDimensions["gen_ai.request.model"])'
      '| extend latency_ms = iff(tobool(customDimensions["gen_ai.request.stream"]), 1000.0 * todouble(customDimensions["aigw.time_to_first_chunk_s"]), duration)'
      '| summarize attempts = count(), p95 = percentile(latency_ms, 95) by model'
      '| where attempts >= ${minRequests} and p95 > ${modelLatencyP95Ms}'
    ], '\n')
  }
  {
    name: 'throttled-requests'
    dimensions: []
    displayName: 'AI gateway: 429 rate'
    description: 'More than ${throttledRequestPercent}% of requests answered 429 (rate limit or budget) in 15 minutes.'
    severity: 2
    query: join([
      appRequests
      '| summarize total = count(), throttled = countif(resultCode == "429")'
      '| where total >= ${minRequests} and 100.0 * throttled / total > ${throttledRequestPercent}'
    ], '\n')
  }
  {
    name: 'budget-used'
    dimensions: [
      'tenant'
      'window'
      'unit'
    ]
    displayName: 'AI gateway: tenant budget at ${budgetUsedPercent}%'
    description: 'A tenant has used ${budgetUsedPercent}% or more of a token or USD budget (day or month); one row per tenant, window and unit.'
    severity: 3
    query: join([
      'customMetrics'
      '| where name == "aigw.budget.used_ratio"'
      '| extend tenant = tostring(customDimensions["aigw.tenant"]), window = tostring(customDimensions["aigw.budget.window"]), unit = tostring(customDimensions["aigw.budget.unit"])'
      '| summarize used = max(value) by tenant, window, unit'
      '| where used * 100 >= ${budgetUsedPercent}'
    ], '\n')
  }
  {
    name: 'breaker-open'
    dimensions: [
      'endpoint'
    ]
    displayName: 'AI gateway: breaker open'
    description: 'A model endpoint\'s circuit breaker opened in 15 minutes: its calls fail over to the next endpoint, or fail.'
    severity: 2
    query: join([
      'customMetrics'
      '| where name == "aigw.breaker.transitions"'
      '| where tostring(customDimensions["aigw.breaker.state"]) == "open"'
      '| summarize opened = sum(valueSum) by endpoint = tostring(customDimensions["aigw.endpoint"])'
      '| where opened > 0'
    ], '\n')
  }
  {
    // The host's own log line when it moves a message: it is written for a job that failed every delivery and
    // for a message that is not a job alike, and whatever the app's telemetry does.
    name: 'poison-jobs'
    dimensions: []
    displayName: 'AI gateway: jobs in ${poisonQueueName}'
    description: 'A queue message failed every delivery and was moved to ${poisonQueueName}.'
    severity: 2
    query: join([
      'traces'
      '| where message contains "Moving message to queue" and message contains "${poisonQueueName}"'
      '| summarize poisoned = count()'
      '| where poisoned > 0'
    ], '\n')
  }
]

module actionGroup '../core/monitor/action-group.bicep' = {
  name: 'action-group'
  params: {
    name: 'ag-${resourceToken}'
    tags: tags
    email: alertEmail
  }
}

module logAlerts '../core/monitor/log-alert.bicep' = [for rule in rules: {
  name: 'alert-${rule.name}'
  params: {
    name: '${rule.name}-${resourceToken}'
    location: location
    tags: tags
    displayName: rule.displayName
    alertDescription: rule.description
    severity: rule.severity
    query: rule.query
    dimensions: rule.dimensions
    scopeId: appInsightsId
    actionGroupId: actionGroup.outputs.id
  }
}]

output actionGroupId string = actionGroup.outputs.id
