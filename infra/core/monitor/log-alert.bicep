// One log search alert rule: fires when its query returns at least one row in the window.

param name string
param location string = resourceGroup().location
param tags object = {}
param displayName string
param alertDescription string

@minValue(0)
@maxValue(4)
param severity int

@description('KQL that returns rows only when the alert condition holds.')
param query string

@description('Resource the query runs against (the Application Insights component).')
param scopeId string
param actionGroupId string
@description('How often the query runs. PT15M costs a third of PT5M per rule (log alerts are billed by frequency).')
param evaluationFrequency string = 'PT15M'
param windowSize string = 'PT15M'
@description('Columns of the query\'s rows to split by: one alert per value (per tenant, per endpoint), each resolving on its own.')
param dimensions array = []

resource rule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: name
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: displayName
    description: alertDescription
    severity: severity
    enabled: true
    scopes: [
      scopeId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
    criteria: {
      allOf: [
        {
          query: query
          timeAggregation: 'Count'
          dimensions: [for d in dimensions: {
            name: d
            operator: 'Include'
            values: [
              '*'
            ]
          }]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

output id string = rule.id
