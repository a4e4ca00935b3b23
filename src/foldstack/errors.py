class PipelineError(Exception):
    """A user-facing error: printed as one line by the stage entry points, exit code 1."""
