// One Azure AI services account of a single kind (Content Safety, Language): Entra ID only, custom subdomain.

param name string
param location string = resourceGroup().location
param tags object = {}

@description('The account kind: ContentSafety (Prompt Shields, harm categories) or TextAnalytics (Azure AI Language, PII).')
@allowed([
  'ContentSafety'
  'TextAnalytics'
])
param kind string

@description('The pricing tier: S0 for Content Safety, S for Language (F0, the free tier, allows one account per subscription).')
param sku string

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
  kind: kind
  sku: {
    name: sku
  }
  properties: {
    // Entra ID tokens need the custom subdomain endpoint; it is also CONTENT_SAFETY_ENDPOINT / LANGUAGE_ENDPOINT.
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
