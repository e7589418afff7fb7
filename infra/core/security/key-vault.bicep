// Key Vault for the few secrets the app may need (e.g. a non-Azure provider's key): RBAC only, purge-protected.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Days a deleted vault (and its secrets) stays recoverable. With purge protection on, the vault name stays reserved this long after `azd down`.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 7

@description('Disabled when network isolation is on: the service is then reached only through its private endpoint.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (RBAC); enableNetworkIsolation=true turns it off behind a private endpoint.
  // checkov:skip=CKV_AZURE_109: Public by default (private endpoints cost ~USD 7/month each and block local runs); Entra ID only (RBAC); enableNetworkIsolation=true turns it off behind a private endpoint; Flex Consumption has no fixed outbound IPs for a firewall rule.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

output id string = vault.id
output name string = vault.name
output KEY_VAULT_URI string = vault.properties.vaultUri
