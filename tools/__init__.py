"""Developer tools that run beside the app: the local Functions host and the model simulator."""
