"""Safety: the offline prompt-injection detector and the secrets and PII redactor. Imports only core."""
