"""Content safety's services and input screening: the Azure AI Content Safety and Language clients
(each with its breaker and timeout) and the screening verdict. Imports shared.safety (the offline
detector and redactor), upstream's breaker, observability and core."""
