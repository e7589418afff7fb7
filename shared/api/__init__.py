"""What clients read: problem+json, OpenAI's error objects and the OpenAPI document. Imports only core."""
