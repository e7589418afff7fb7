// Storage for the Functions host and the jobs queue: shared keys off, reached only through Entra ID.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Blob container Flex Consumption deploys the app package into.')
param deploymentContainerName string

@description('Queues to create (the jobs queue and its poison queue).')
param queueNames array

@description('Disabled when network isolation is on: the service is then reached only through its private endpoint.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Days a deleted blob or container can be restored.')
param deleteRetentionDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (shared keys off); enableNetworkIsolation=true turns it off behind a private endpoint.
  // checkov:skip=CKV_AZURE_59: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (shared keys off); enableNetworkIsolation=true turns it off behind a private endpoint.
  // checkov:skip=CKV_AZURE_206: LRS is enough here: the account holds in-flight queue messages and the deployment package, both reproducible; durable state lives in Cosmos DB.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
