"""Queue jobs: the job service, its queue client and the dead letters. Imports the pipeline and below."""
