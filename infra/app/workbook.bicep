// The gateway's Azure Monitor workbook (infra/app/workbook.json), shown under the Application Insights resource.
// Panels and the names they query: docs/runbook.md; tests/infra/test_telemetry_names.py checks the names.

param location string = resourceGroup().location
param tags object = {}

@description('Application Insights component the workbook belongs to and queries.')
param appInsightsId string

@description('Storage account whose queue service holds the jobs queues (its QueueMessageCount is the backlog).')
param storageAccountId string

@description('Name shown in the workbook gallery.')
param displayName string = 'AI gateway'

// The JSON is what the portal's Advanced Editor shows; the placeholders are the only per-deployment parts.
var definition = loadTextContent('./workbook.json')
var serializedData = replace(replace(definition, '__APP_INSIGHTS_ID__', appInsightsId), '__QUEUE_SERVICE_ID__', '${storageAccountId}/queueServices/default')

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook names must be GUIDs; this one is stable per component, so a redeploy updates it in place.
  name: guid(appInsightsId, 'aigw-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: serializedData
  }
}

output id string = workbook.id
