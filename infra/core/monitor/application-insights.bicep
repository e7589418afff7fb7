// Application Insights (workspace-based) with local auth off: telemetry is accepted only with an Entra token.

param name string
param location string = resourceGroup().location
param tags object = {}
param logAnalyticsWorkspaceId string

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: name
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalyticsWorkspaceId
    // Ingestion needs Monitoring Metrics Publisher + an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

output id string = appInsights.id
output name string = appInsights.name
// Not a secret: it names the ingestion endpoint; with local auth off, sending still needs an Entra token.
output APPLICATIONINSIGHTS_CONNECTION_STRING string = appInsights.properties.ConnectionString
