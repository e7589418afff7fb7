// The user-assigned managed identity the Function App uses for every dependency (no keys anywhere).

param name string
param location string = resourceGroup().location
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
// azure-identity reads AZURE_CLIENT_ID to pick this identity; the host's *__clientId settings use it too.
output AZURE_CLIENT_ID string = identity.properties.clientId
