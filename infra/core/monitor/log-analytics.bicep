// Log Analytics workspace behind Application Insights (workspace-based), Entra ID queries only.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Days logs are kept (31 days are included in the ingestion price for Application Insights data).')
param retentionInDays int = 30

@description('Daily ingestion cap in GB; -1 for none. A cap protects the bill from a log storm but drops telemetry once reached.')
param dailyQuotaGb int = -1

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    workspaceCapping: {
      dailyQuotaGb: dailyQuotaGb
    }
    features: {
      disableLocalAuth: true
    }
  }
}

output id string = workspace.id
output name string = workspace.name
