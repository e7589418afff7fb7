// One Azure OpenAI account (Entra ID only, custom subdomain) with two chat deployments (the small and the
// complex tier of the model routes, docs/routing.md) and an embedding deployment.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Chat model deployment: {name, model, version, sku, capacity}; capacity is in thousands of tokens per minute.')
param chatDeployment object

@description('The complex tier\'s chat deployment (docs/routing.md): {name, model, version, sku, capacity}.')
param complexChatDeployment object

@description('Embedding model deployment: {name, model, version, sku, capacity}.')
param embeddingDeployment object

@description('Disabled when network isolation is on: the service is then reached only through its private endpoint.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (local auth off); enableNetworkIsolation=true turns it off behind a private endpoint.
  // checkov:skip=CKV_AZURE_238: The account makes no outbound calls and uses Microsoft-managed keys, so an identity of its own would have nothing to do; callers use their identities.
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    // Entra ID tokens need the custom subdomain endpoint; it is also the endpoint in AI_ENDPOINTS.
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

resource chat 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: chatDeployment.name
  sku: {
    name: chatDeployment.sku
    capacity: chatDeployment.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: chatDeployment.model
      version: chatDeployment.version
    }
    versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
  }
}

// Deployments on one account must be created one at a time, hence the dependencies.
resource complexChat 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: complexChatDeployment.name
  sku: {
    name: complexChatDeployment.sku
    capacity: complexChatDeployment.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: complexChatDeployment.model
      version: complexChatDeployment.version
    }
    versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
  }
  dependsOn: [
    chat
  ]
}

resource embedding 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: embeddingDeployment.name
  sku: {
    name: embeddingDeployment.sku
    capacity: embeddingDeployment.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: embeddingDeployment.model
      version: embeddingDeployment.version
    }
    versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
  }
  dependsOn: [
    complexChat
  ]
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
output chatDeploymentName string = chat.name
output complexChatDeploymentName string = complexChat.name
output embeddingDeploymentName string = embedding.name
