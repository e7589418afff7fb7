// The action group alerts notify: one e-mail receiver.

param name string
param tags object = {}

@description('Address alert notifications go to.')
param email string

@maxLength(12)
param shortName string = 'aigw-alerts'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: name
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: shortName
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: email
        useCommonAlertSchema: true
      }
    ]
  }
}

output id string = actionGroup.id
