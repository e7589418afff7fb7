// Every Azure RBAC role assignment of the deployment, from one list; names are guid(scope, principal, role).

@description('Assignments: {principalId, principalType (ServicePrincipal|User|Group), roleDefinitionId (built-in role GUID), scope (storage|keyVault|appInsights|openAiPrimary|openAiSecondary|contentSafety|language)}. An unknown scope kind matches no loop below; tests/infra checks the kinds main.bicep uses.')
param assignments array

param storageAccountName string
param keyVaultName string
param appInsightsName string
param openAiPrimaryName string
param openAiSecondaryName string
param contentSafetyName string
param languageName string

var storageAssignments = filter(assignments, a => a.scope == 'storage')
var keyVaultAssignments = filter(assignments, a => a.scope == 'keyVault')
var appInsightsAssignments = filter(assignments, a => a.scope == 'appInsights')
var openAiPrimaryAssignments = filter(assignments, a => a.scope == 'openAiPrimary')
var openAiSecondaryAssignments = filter(assignments, a => a.scope == 'openAiSecondary')
var contentSafetyAssignments = filter(assignments, a => a.scope == 'contentSafety')
var languageAssignments = filter(assignments, a => a.scope == 'language')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource openAiPrimary 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: openAiPrimaryName
}

resource openAiSecondary 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: openAiSecondaryName
}

resource contentSafety 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: contentSafetyName
}

resource language 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: languageName
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in storageAssignments: {
  name: guid(storage.id, a.principalId, a.roleDefinitionId)
  scope: storage
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]

resource keyVaultRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in keyVaultAssignments: {
  name: guid(keyVault.id, a.principalId, a.roleDefinitionId)
  scope: keyVault
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]

resource appInsightsRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in appInsightsAssignments: {
  name: guid(appInsights.id, a.principalId, a.roleDefinitionId)
  scope: appInsights
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]

resource openAiPrimaryRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in openAiPrimaryAssignments: {
  name: guid(openAiPrimary.id, a.principalId, a.roleDefinitionId)
  scope: openAiPrimary
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]

resource openAiSecondaryRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in openAiSecondaryAssignments: {
  name: guid(openAiSecondary.id, a.principalId, a.roleDefinitionId)
  scope: openAiSecondary
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]

resource contentSafetyRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in contentSafetyAssignments: {
  name: guid(contentSafety.id, a.principalId, a.roleDefinitionId)
  scope: contentSafety
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]

resource languageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in languageAssignments: {
  name: guid(language.id, a.principalId, a.roleDefinitionId)
  scope: language
  properties: {
    principalId: a.principalId
    principalType: a.principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
  }
}]
