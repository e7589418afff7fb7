// The gateway's alerts: failed request rate, p95 latency, 429 rate, budget-exceeded events, poison jobs.

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

@description('Alert when the 95th percentile of request duration exceeds this many milliseconds (streamed answers count in full).')
param latencyP95Ms int = 15000

@description('Alert when more than this percentage of requests are answered 429 (rate limit or budget).')
param throttledRequestPercent int = 10

@description('Ignore windows with fewer requests than this: one failure out of three requests is not an incident.')
param minRequests int = 20

// Probes are answered without touching any dependency; counting them would dilute every rate.
var appRequests = 'requests | where url !contains "/api/health" and url !contains "/api/ready"'

var rules = [
  {
    name: 'failed-requests'
    displayName: 'AI gateway: failed request rate'
    description: 'More than ${failedRequestPercent}% of requests answered 5xx in 15 minutes (at least ${minRequests} requests).'
    severity: 1
    query: join([
      appRequests
      '| summarize total = count(), failed = countif(toint(resultCode) >= 500)'
      '| where total >= ${minRequests} and 100.0 * failed / total > ${failedRequestPercent}'
    ], '\n')
  }
  {
    name: 'latency-p95'
    displayName: 'AI gateway: p95 latency'
    description: 'p95 request duration above ${latencyP95Ms} ms in 15 minutes (health and ready probes excluded).'
    severity: 2
    query: join([
      appRequests
      '| summarize total = count(), p95 = percentile(duration, 95)'
      '| where total >= ${minRequests} and p95 > ${latencyP95Ms}'
    ], '\n')
  }
  {
    name: 'throttled-requests'
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
    name: 'budget-exceeded'
    displayName: 'AI gateway: budget exceeded'
    description: 'A tenant hit its token or USD budget (custom event or log record budget_exceeded).'
    severity: 3
    query: join([
      'union isfuzzy=true'
      '  (customEvents | where name == "budget_exceeded"),'
      '  (traces | where message contains "budget_exceeded" or tostring(customDimensions["event"]) == "budget_exceeded")'
      '| summarize events = count()'
      '| where events > 0'
    ], '\n')
  }
  {
    name: 'poison-jobs'
    displayName: 'AI gateway: jobs in ${poisonQueueName}'
    description: 'A queue job failed every retry and was moved to ${poisonQueueName} (host log, or the poison handler ran).'
    severity: 2
    query: join([
      'union isfuzzy=true'
      '  (traces | where message contains "Moving message to queue" and message contains "${poisonQueueName}"),'
      '  (requests | where tostring(customDimensions) contains "${poisonQueueName}" or operation_Name contains "poison")'
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
    scopeId: appInsightsId
    actionGroupId: actionGroup.outputs.id
  }
}]

output actionGroupId string = actionGroup.outputs.id
