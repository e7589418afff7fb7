// The whole AI gateway: `azd up` provisions this, then deploys the app to the Function App tagged azd-service-name: api.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; with the subscription and location it seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region for the resource group and every resource except the Azure OpenAI accounts.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Region of the primary Azure OpenAI account (priority 0 in AI_ENDPOINTS).')
@metadata({
  azd: {
    type: 'location'
  }
})
param openAiPrimaryLocation string

@description('Region of the secondary Azure OpenAI account (priority 1): failover when the primary throttles or fails.')
@metadata({
  azd: {
    type: 'location'
  }
})
param openAiSecondaryLocation string

@description('Object id of the developer running azd (AZURE_PRINCIPAL_ID); gets the app\'s data roles so the app can run locally against these resources. Empty for none.')
param principalId string = ''

@description('Kind of principalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Tenants for the TENANTS app setting: [{tenant, keys?: [{id, sha256}], entra?: [{tid, client_id} or {tid, oid}], roles?}]. Holds SHA-256 hashes of API keys, never keys.')
param tenants array = []

@description('ENTRA_AUDIENCES: the aud values of Entra ID tokens the API accepts (its app ID URI and client id, docs/identity.md); empty: Entra tokens are refused, API keys still work.')
param entraAudiences array = []

@description('ENTRA_AUTHORITY: the Entra ID authority whose keys sign the tokens (sovereign clouds differ).')
param entraAuthority string = 'https://login.microsoftonline.com'

@description('ENTRA_REQUIRED_ROLE: the app role (or delegated scope) a caller needs.')
param entraRequiredRole string = 'AI.User'

@description('MODEL_PRICES app setting: USD per 1M tokens for each chat model, {model: {input_per_1m, output_per_1m}}. Needed for tenant USD limits; check your agreement\'s prices.')
param modelPrices object = {
  'gpt-4o-mini': {
    input_per_1m: json('0.15')
    output_per_1m: json('0.6')
  }
  'gpt-4o': {
    input_per_1m: json('2.5')
    output_per_1m: json('10.0')
  }
}

@description('ROUTES app setting: model routes clients ask for as the model (docs/routing.md); both models of each must be deployed and priced.')
param routes object = {
  auto: {
    simple: chatModelName
    complex: complexChatModelName
    threshold: json('0.5')
  }
}

@description('Private endpoints and VNet integration for Storage, Cosmos DB, Key Vault and Azure OpenAI, with their public access off.')
param enableNetworkIsolation bool = false

@description('E-mail address for alerts; no alerts are created when empty.')
param alertEmail string = ''

param chatModelName string = 'gpt-4o-mini'
param chatModelVersion string = '2024-07-18'
@description('Deployment SKU of the chat model (GlobalStandard, Standard, DataZoneStandard).')
param chatDeploymentSku string = 'GlobalStandard'
@description('Chat deployment capacity in thousands of tokens per minute, per account.')
param chatCapacity int = 30

@description('The complex tier of the model routes (docs/routing.md): a second chat deployment per account.')
param complexChatModelName string = 'gpt-4o'
param complexChatModelVersion string = '2024-11-20'
param complexChatDeploymentSku string = 'GlobalStandard'
@description('Complex-tier chat deployment capacity in thousands of tokens per minute, per account.')
param complexChatCapacity int = 10

param embeddingModelName string = 'text-embedding-3-small'
param embeddingModelVersion string = '1'
param embeddingDeploymentSku string = 'Standard'
param embeddingCapacity int = 30

@description('Dimensions of the embedding model\'s vectors (text-embedding-3-small: 1536).')
param embeddingDimensions int = 1536

@allowed([
  'quantizedFlat'
  'diskANN'
])
param vectorIndexType string = 'quantizedFlat'

@description('Default time-to-live of cache entries, in seconds.')
param cacheDefaultTtlSeconds int = 86400

@description('Most instances the Flex Consumption app scales out to.')
param maximumInstanceCount int = 100

@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 7

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var resourceGroupName = '${abbrs.resourcesResourceGroups}${environmentName}'
var identityName = '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
var storageAccountName = '${abbrs.storageStorageAccounts}${resourceToken}'
var cosmosAccountName = '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
var keyVaultName = '${abbrs.keyVaultVaults}${resourceToken}'
var logAnalyticsName = '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
var appInsightsName = '${abbrs.insightsComponents}${resourceToken}'
var openAiPrimaryName = '${abbrs.cognitiveServicesAccounts}oai1-${resourceToken}'
var openAiSecondaryName = '${abbrs.cognitiveServicesAccounts}oai2-${resourceToken}'
var contentSafetyName = '${abbrs.cognitiveServicesAccounts}cs-${resourceToken}'
var languageName = '${abbrs.cognitiveServicesAccounts}lang-${resourceToken}'
var planName = '${abbrs.webServerFarms}${resourceToken}'
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var vnetName = '${abbrs.networkVirtualNetworks}${resourceToken}'
var deploymentContainerName = 'app-package'
var publicNetworkAccess = enableNetworkIsolation ? 'Disabled' : 'Enabled'

// Contracts from docs/state.md and docs/queue.md: the database, the containers with their partition keys, the jobs queue.
// defaultTtl -1 turns TTL on without a default: an item expires only if it carries its own ttl.
var cosmosDatabaseName = 'aigw'
var jobsQueueName = 'ai-jobs'
var poisonQueueName = '${jobsQueueName}-poison'
var cosmosContainers = [
  {
    name: 'cache'
    partitionKey: '/tenant'
    defaultTtl: cacheDefaultTtlSeconds
    vectorSearch: true
  }
  {
    name: 'budgets'
    partitionKey: '/tenant'
    defaultTtl: -1
    vectorSearch: false
  }
  {
    name: 'ratelimits'
    partitionKey: '/key'
    defaultTtl: -1
    vectorSearch: false
  }
  {
    name: 'jobs'
    partitionKey: '/tenant'
    defaultTtl: -1
    vectorSearch: false
  }
  {
    // The Responses API's records (docs/responses.md): kept as long as the provider keeps a stored response.
    name: 'responses'
    partitionKey: '/tenant'
    defaultTtl: 2592000 // 30 days
    vectorSearch: false
  }
  {
    // The tenant directory (docs/admin.md): tenants and their keys as SHA-256 digests; TENANTS seeds it.
    name: 'tenants'
    partitionKey: '/tenant'
    defaultTtl: -1
    vectorSearch: false
  }
]

var chatDeployment = {
  name: chatModelName
  model: chatModelName
  version: chatModelVersion
  sku: chatDeploymentSku
  capacity: chatCapacity
}
var complexChatDeployment = {
  name: complexChatModelName
  model: complexChatModelName
  version: complexChatModelVersion
  sku: complexChatDeploymentSku
  capacity: complexChatCapacity
}
var embeddingDeployment = {
  name: embeddingModelName
  model: embeddingModelName
  version: embeddingModelVersion
  sku: embeddingDeploymentSku
  capacity: embeddingCapacity
}

// Built-in Azure RBAC roles (ids are the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  cognitiveServicesOpenAIUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  cognitiveServicesUser: 'a97b65f3-24c7-4388-baec-2e87135dc908'
}

// What the app's identity needs, each on the one resource it needs it on; the developer gets the same.
var dataRoles = [
  {
    // The Functions host keeps leases and the deployment package in blobs.
    roleDefinitionId: roles.storageBlobDataOwner
    scope: 'storage'
  }
  {
    roleDefinitionId: roles.storageQueueDataContributor
    scope: 'storage'
  }
  {
    roleDefinitionId: roles.keyVaultSecretsUser
    scope: 'keyVault'
  }
  {
    roleDefinitionId: roles.monitoringMetricsPublisher
    scope: 'appInsights'
  }
  {
    roleDefinitionId: roles.cognitiveServicesOpenAIUser
    scope: 'openAiPrimary'
  }
  {
    roleDefinitionId: roles.cognitiveServicesOpenAIUser
    scope: 'openAiSecondary'
  }
  {
    // Content safety (docs/safety.md): Prompt Shields and harm analysis, then PII through Language.
    roleDefinitionId: roles.cognitiveServicesUser
    scope: 'contentSafety'
  }
  {
    roleDefinitionId: roles.cognitiveServicesUser
    scope: 'language'
  }
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity './core/identity/user-assigned-identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: identityName
    location: location
    tags: tags
  }
}

module storage './core/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    queueNames: [
      jobsQueueName
      poisonQueueName
    ]
    publicNetworkAccess: publicNetworkAccess
  }
}

module cosmos './core/database/cosmos-account.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: cosmosAccountName
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    containers: cosmosContainers
    embeddingDimensions: embeddingDimensions
    vectorIndexType: vectorIndexType
    publicNetworkAccess: publicNetworkAccess
  }
}

module keyVault './core/security/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    publicNetworkAccess: publicNetworkAccess
  }
}

module logAnalytics './core/monitor/log-analytics.bicep' = {
  name: 'log-analytics'
  scope: rg
  params: {
    name: logAnalyticsName
    location: location
    tags: tags
  }
}

module appInsights './core/monitor/application-insights.bicep' = {
  name: 'app-insights'
  scope: rg
  params: {
    name: appInsightsName
    location: location
    tags: tags
    logAnalyticsWorkspaceId: logAnalytics.outputs.id
  }
}

module openAiPrimary './core/ai/openai-account.bicep' = {
  name: 'openai-primary'
  scope: rg
  params: {
    name: openAiPrimaryName
    location: openAiPrimaryLocation
    tags: tags
    chatDeployment: chatDeployment
    complexChatDeployment: complexChatDeployment
    embeddingDeployment: embeddingDeployment
    publicNetworkAccess: publicNetworkAccess
  }
}

module openAiSecondary './core/ai/openai-account.bicep' = {
  name: 'openai-secondary'
  scope: rg
  params: {
    name: openAiSecondaryName
    location: openAiSecondaryLocation
    tags: tags
    chatDeployment: chatDeployment
    complexChatDeployment: complexChatDeployment
    embeddingDeployment: embeddingDeployment
    publicNetworkAccess: publicNetworkAccess
  }
}

// Content safety (docs/safety.md): CONTENT_SAFETY_ENDPOINT and LANGUAGE_ENDPOINT, reached with the app's identity.
module contentSafety './core/ai/cognitive-account.bicep' = {
  name: 'content-safety'
  scope: rg
  params: {
    name: contentSafetyName
    location: location
    tags: tags
    kind: 'ContentSafety'
    sku: 'S0'
    publicNetworkAccess: publicNetworkAccess
  }
}

module language './core/ai/cognitive-account.bicep' = {
  name: 'language'
  scope: rg
  params: {
    name: languageName
    location: location
    tags: tags
    kind: 'TextAnalytics'
    sku: 'S'
    publicNetworkAccess: publicNetworkAccess
  }
}

// AI_ENDPOINTS (docs/settings.md): managed identity, so no api_key_secret; lower priority is tried first.
var aiEndpoints = [
  {
    name: 'primary'
    kind: 'azure_openai'
    endpoint: openAiPrimary.outputs.endpoint
    deployment: openAiPrimary.outputs.chatDeploymentName
    model: chatModelName
    priority: 0
    embedding_deployment: openAiPrimary.outputs.embeddingDeploymentName
    embedding_model: embeddingModelName
  }
  {
    name: 'secondary'
    kind: 'azure_openai'
    endpoint: openAiSecondary.outputs.endpoint
    deployment: openAiSecondary.outputs.chatDeploymentName
    model: chatModelName
    priority: 1
    embedding_deployment: openAiSecondary.outputs.embeddingDeploymentName
    embedding_model: embeddingModelName
  }
  {
    name: 'primary-complex'
    kind: 'azure_openai'
    endpoint: openAiPrimary.outputs.endpoint
    deployment: openAiPrimary.outputs.complexChatDeploymentName
    model: complexChatModelName
    priority: 0
    embedding_deployment: openAiPrimary.outputs.embeddingDeploymentName
  }
  {
    name: 'secondary-complex'
    kind: 'azure_openai'
    endpoint: openAiSecondary.outputs.endpoint
    deployment: openAiSecondary.outputs.complexChatDeploymentName
    model: complexChatModelName
    priority: 1
    embedding_deployment: openAiSecondary.outputs.embeddingDeploymentName
  }
]

module plan './core/host/flex-consumption-plan.bicep' = {
  name: 'plan'
  scope: rg
  params: {
    name: planName
    location: location
    tags: tags
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.id
    identityId: identity.outputs.id
    identityClientId: identity.outputs.AZURE_CLIENT_ID
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    subnetId: enableNetworkIsolation ? vnet.outputs.appSubnetId : ''
    maximumInstanceCount: maximumInstanceCount
    aiEndpoints: string(aiEndpoints)
    tenants: string(tenants)
    entraAudiences: string(entraAudiences)
    entraAuthority: entraAuthority
    entraRequiredRole: entraRequiredRole
    modelPrices: string(modelPrices)
    routes: string(routes)
    cosmosEndpoint: cosmos.outputs.COSMOS_ENDPOINT
    cosmosDatabase: cosmos.outputs.COSMOS_DATABASE
    jobsQueue: jobsQueueName
    keyVaultUri: keyVault.outputs.KEY_VAULT_URI
    contentSafetyEndpoint: contentSafety.outputs.endpoint
    languageEndpoint: language.outputs.endpoint
    appInsightsConnectionString: appInsights.outputs.APPLICATIONINSIGHTS_CONNECTION_STRING
  }
  dependsOn: [
    // The host reads storage and telemetry as soon as it starts: grant the roles (and, when isolated,
    // open the private endpoints) first.
    roleAssignments
    cosmosRoleAssignments
    endpoints
  ]
}

// Who gets dataRoles: the app's identity always, the developer when AZURE_PRINCIPAL_ID is set.
var appGrants = [for r in dataRoles: {
  principal: 'app'
  roleDefinitionId: r.roleDefinitionId
  scope: r.scope
}]
var developerGrants = [for r in dataRoles: {
  principal: 'developer'
  roleDefinitionId: r.roleDefinitionId
  scope: r.scope
}]
var roleGrants = empty(principalId) ? appGrants : concat(appGrants, developerGrants)

module roleAssignments './core/security/role-assignments.bicep' = {
  name: 'role-assignments'
  scope: rg
  params: {
    assignments: [for grant in roleGrants: {
      principalId: grant.principal == 'app' ? identity.outputs.principalId : principalId
      principalType: grant.principal == 'app' ? 'ServicePrincipal' : principalType
      roleDefinitionId: grant.roleDefinitionId
      scope: grant.scope
    }]
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: appInsights.outputs.name
    openAiPrimaryName: openAiPrimary.outputs.name
    openAiSecondaryName: openAiSecondary.outputs.name
    contentSafetyName: contentSafety.outputs.name
    languageName: language.outputs.name
  }
}

module cosmosRoleAssignments './core/security/cosmos-sql-role-assignments.bicep' = {
  name: 'cosmos-role-assignments'
  scope: rg
  params: {
    cosmosAccountName: cosmos.outputs.name
    principalIds: empty(principalId) ? [
      identity.outputs.principalId
    ] : [
      identity.outputs.principalId
      principalId
    ]
  }
}

// Network isolation: a VNet, a private DNS zone per service kind, a private endpoint per service.
var privateDnsZones = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  cosmos: 'privatelink.documents.azure.com'
  vault: 'privatelink.vaultcore.azure.net'
  openai: 'privatelink.openai.azure.com'
  cognitive: 'privatelink.cognitiveservices.azure.com'
}
var privateEndpoints = [
  {
    name: 'storage-blob'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.Storage/storageAccounts', storageAccountName)
    groupId: 'blob'
    zone: privateDnsZones.blob
  }
  {
    name: 'storage-queue'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.Storage/storageAccounts', storageAccountName)
    groupId: 'queue'
    zone: privateDnsZones.queue
  }
  {
    name: 'cosmos'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.DocumentDB/databaseAccounts', cosmosAccountName)
    groupId: 'Sql'
    zone: privateDnsZones.cosmos
  }
  {
    name: 'key-vault'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.KeyVault/vaults', keyVaultName)
    groupId: 'vault'
    zone: privateDnsZones.vault
  }
  {
    name: 'openai-primary'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.CognitiveServices/accounts', openAiPrimaryName)
    groupId: 'account'
    zone: privateDnsZones.openai
  }
  {
    name: 'openai-secondary'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.CognitiveServices/accounts', openAiSecondaryName)
    groupId: 'account'
    zone: privateDnsZones.openai
  }
  {
    name: 'content-safety'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.CognitiveServices/accounts', contentSafetyName)
    groupId: 'account'
    zone: privateDnsZones.cognitive
  }
  {
    name: 'language'
    serviceId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.CognitiveServices/accounts', languageName)
    groupId: 'account'
    zone: privateDnsZones.cognitive
  }
]

module vnet './core/network/virtual-network.bicep' = if (enableNetworkIsolation) {
  name: 'vnet'
  scope: rg
  params: {
    name: vnetName
    location: location
    tags: tags
  }
}

module dnsZones './core/network/private-dns-zone.bicep' = [for zone in items(privateDnsZones): if (enableNetworkIsolation) {
  name: 'dns-${zone.key}'
  scope: rg
  params: {
    name: zone.value
    tags: tags
    virtualNetworkId: vnet.outputs.id
  }
}]

module endpoints './core/network/private-endpoint.bicep' = [for pe in privateEndpoints: if (enableNetworkIsolation) {
  name: 'pe-${pe.name}'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${pe.name}-${resourceToken}'
    location: location
    tags: tags
    subnetId: vnet.outputs.privateEndpointSubnetId
    serviceId: pe.serviceId
    groupId: pe.groupId
    privateDnsZoneId: resourceId(subscription().subscriptionId, resourceGroupName, 'Microsoft.Network/privateDnsZones', pe.zone)
  }
  dependsOn: [
    dnsZones
    storage
    cosmos
    keyVault
    openAiPrimary
    openAiSecondary
    contentSafety
    language
  ]
}]

// The operator's dashboard: deployed always (it costs nothing until someone opens it).
module workbook './app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: appInsights.outputs.id
    storageAccountId: storage.outputs.id
  }
}

module alerts './app/alerts.bicep' = if (!empty(alertEmail)) {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    appInsightsId: appInsights.outputs.id
    alertEmail: alertEmail
    poisonQueueName: poisonQueueName
  }
}

// Outputs are named as the app settings they feed; azd writes them to .azure/<env>/.env.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CLIENT_ID string = identity.outputs.AZURE_CLIENT_ID
output AI_ENDPOINTS string = string(aiEndpoints)
// Tenant ids and SHA-256 hashes of their keys: not secrets.
output TENANTS string = string(tenants)
output ENTRA_AUDIENCES string = string(entraAudiences)
output ENTRA_AUTHORITY string = entraAuthority
output ENTRA_REQUIRED_ROLE string = entraRequiredRole
output MODEL_PRICES string = string(modelPrices)
output ROUTES string = string(routes)
output COSMOS_ENDPOINT string = cosmos.outputs.COSMOS_ENDPOINT
output COSMOS_DATABASE string = cosmos.outputs.COSMOS_DATABASE
output JOBS_QUEUE string = jobsQueueName
output JOBS_SWEEP_SCHEDULE string = '0 * * * * *'
output AzureWebJobsStorage__accountName string = storage.outputs.name
output KEY_VAULT_URI string = keyVault.outputs.KEY_VAULT_URI
output CONTENT_SAFETY_ENDPOINT string = contentSafety.outputs.endpoint
output LANGUAGE_ENDPOINT string = language.outputs.endpoint
output APPLICATIONINSIGHTS_CONNECTION_STRING string = appInsights.outputs.APPLICATIONINSIGHTS_CONNECTION_STRING
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
