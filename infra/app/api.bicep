// The Function App (Flex Consumption, Python 3.11) and every app setting it gets: identities and endpoints, never keys.

param name string
param location string = resourceGroup().location
param tags object = {}
param planId string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID).')
param identityClientId string

param storageAccountName string
param deploymentContainerName string

@description('Subnet for VNet integration; empty for none.')
param subnetId string = ''

param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Values of the app settings of scope "azure" in shared/config.py, each computed in main.bicep.
@description('JSON list of model endpoints (AI_ENDPOINTS).')
param aiEndpoints string

@description('JSON list of tenants with SHA-256 hashes of their API keys, never the keys (TENANTS).')
param tenants string

@description('JSON list of the token audiences the API accepts (ENTRA_AUDIENCES).')
param entraAudiences string

@description('Entra ID authority (ENTRA_AUTHORITY).')
param entraAuthority string

@description('App role an Entra caller needs (ENTRA_REQUIRED_ROLE).')
param entraRequiredRole string

@description('USD per 1M tokens per model (MODEL_PRICES).')
param modelPrices string
@description('Model routes (ROUTES, docs/routing.md).')
param routes string = '{}'
param cosmosEndpoint string
param cosmosDatabase string
param jobsQueue string
param keyVaultUri string
@description('Azure AI Content Safety and Language (docs/safety.md), reached with the identity.')
param contentSafetyEndpoint string
param languageEndpoint string
param appInsightsConnectionString string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// The one place app settings are defined. tests/infra/test_app_settings.py checks this object against
// shared/config.py: every "azure" setting present, no "local" one, no key or secret in any value.
var appSettings = {
  // Functions host storage through the identity: no AzureWebJobsStorage connection string, no account key.
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // The HTTP streams extension (azurefunctions-extensions-http-fastapi) needs worker indexing at init.
  PYTHON_ENABLE_INIT_INDEXING: '1'
  // The host's default page on '/' advertises the runtime; with this, '/' is an empty 204 (devhost does the same).
  AzureWebJobsDisableHomepage: 'true'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  // Application Insights has local auth off: the host sends telemetry with this identity's token.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AI_ENDPOINTS: aiEndpoints
  TENANTS: tenants
  ENTRA_AUDIENCES: entraAudiences
  ENTRA_AUTHORITY: entraAuthority
  ENTRA_REQUIRED_ROLE: entraRequiredRole
  MODEL_PRICES: modelPrices
  ROUTES: routes
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_DATABASE: cosmosDatabase
  JOBS_QUEUE: jobsQueue
  // The job sweeper's timer: every minute, at second 0 (NCRONTAB with seconds).
  JOBS_SWEEP_SCHEDULE: '0 * * * * *'
  KEY_VAULT_URI: keyVaultUri
  CONTENT_SAFETY_ENDPOINT: contentSafetyEndpoint
  LANGUAGE_ENDPOINT: languageEndpoint
  AZURE_CLIENT_ID: identityClientId
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The Function App is the gateway's public API; every route except health and ready requires an API key or Entra token.
  // checkov:skip=CKV_AZURE_17: Clients authenticate with API keys or Entra tokens; requiring client certificates would break the unchanged openai / Azure OpenAI clients the API promises to serve.
  // checkov:skip=CKV_AZURE_212: Scale to zero by design: always-ready instances would bill around the clock; HTTP and queue load scale out on demand.
  // checkov:skip=CKV_AZURE_78: Flex Consumption rejects siteConfig.ftpsState (ARM lists it among the unsupported site properties); FTP is off through the 'ftp' basicPublishingCredentialsPolicies below, and deployments go through OneDeploy with an Entra token.
  // checkov:skip=CKV_AZURE_213: App Service health check is built to take instances of a fixed set out of rotation; this app scales to zero, and liveness is covered by /api/health, /api/ready and the failed-request alert.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: planId
    httpsOnly: true
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      // No ftpsState: Flex Consumption refuses the property (see the CKV_AZURE_78 skip above).
      // minTlsVersion, scmMinTlsVersion and http20Enabled are not among Flex's deprecated site properties.
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// azd deploys with an Entra token (OneDeploy); basic-auth publishing credentials stay off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
