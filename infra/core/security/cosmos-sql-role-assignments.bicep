// Cosmos DB data-plane role assignments (sqlRoleAssignments, not Azure RBAC): local auth is off, so these are the only way in.

param cosmosAccountName string

@description('Object ids of the principals that get the role (the app identity, optionally the developer).')
param principalIds array

@description('Built-in Cosmos DB data-plane role: 00000000-0000-0000-0000-000000000002 is Cosmos DB Built-in Data Contributor.')
param roleDefinitionId string = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource assignments 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [for principalId in principalIds: {
  parent: account
  name: guid(account.id, principalId, roleDefinitionId)
  properties: {
    principalId: principalId
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${roleDefinitionId}'
    scope: account.id
  }
}]
