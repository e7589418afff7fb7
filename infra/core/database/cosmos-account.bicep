// Cosmos DB for NoSQL (serverless, Entra ID only): the aigw database and the containers of docs/state.md.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Database name (app setting COSMOS_DATABASE).')
param databaseName string

@description('Containers: {name, partitionKey, defaultTtl, vectorSearch}. defaultTtl -1 turns TTL on with no default expiry (items set their own ttl); vectorSearch adds the /embedding vector policy and index.')
param containers array

@description('Dimensions of the embeddings stored at /embedding (1536 for text-embedding-3-small and ada-002).')
param embeddingDimensions int = 1536

@description('Vector index type on /embedding: quantizedFlat (exact-ish, cheap) or diskANN (large containers).')
@allowed([
  'quantizedFlat'
  'diskANN'
])
param vectorIndexType string = 'quantizedFlat'

@description('Disabled when network isolation is on: the service is then reached only through its private endpoint.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  // checkov:skip=CKV_AZURE_101: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (local auth off); enableNetworkIsolation=true turns it off behind a private endpoint.
  // checkov:skip=CKV_AZURE_99: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (local auth off); enableNetworkIsolation=true turns it off behind a private endpoint; Flex Consumption has no fixed outbound IPs for an IP filter.
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: [
      {
        name: 'EnableServerless'
      }
      {
        // Serverless accounts need this capability for vector embedding policies and vector indexes.
        name: 'EnableNoSQLVectorSearch'
      }
    ]
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: publicNetworkAccess
    networkAclBypass: 'None'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

var vectorPolicy = {
  vectorEmbeddingPolicy: {
    vectorEmbeddings: [
      {
        path: '/embedding'
        dataType: 'float32'
        distanceFunction: 'cosine'
        dimensions: embeddingDimensions
      }
    ]
  }
  indexingPolicy: {
    indexingMode: 'consistent'
    automatic: true
    includedPaths: [
      {
        path: '/*'
      }
    ]
    // The vector is searched through its vector index; range-indexing 1536 numbers per item would only cost RUs.
    excludedPaths: [
      {
        path: '/"_etag"/?'
      }
      {
        path: '/embedding/*'
      }
    ]
    vectorIndexes: [
      {
        path: '/embedding'
        type: vectorIndexType
      }
    ]
  }
}

var plainPolicy = {
  indexingPolicy: {
    indexingMode: 'consistent'
    automatic: true
    includedPaths: [
      {
        path: '/*'
      }
    ]
    excludedPaths: [
      {
        path: '/"_etag"/?'
      }
    ]
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [for container in containers: {
  parent: database
  name: container.name
  properties: {
    resource: union({
      id: container.name
      partitionKey: {
        paths: [
          container.partitionKey
        ]
        kind: 'Hash'
        version: 2
      }
      defaultTtl: container.defaultTtl
    }, container.vectorSearch ? vectorPolicy : plainPolicy)
  }
}]

output id string = account.id
output name string = account.name
output COSMOS_ENDPOINT string = account.properties.documentEndpoint
output COSMOS_DATABASE string = database.name
