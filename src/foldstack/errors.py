"""The user-facing error and the helpers that turn any exception or subprocess into the one line a user reads."""


class PipelineError(Exception):
    """A user-facing error: printed as one line by the stage entry points, exit code 1."""


def error_lines(err: BaseException) -> list[str]:
    """The non-empty lines of an exception's message, stripped."""
    return [ln.strip() for ln in str(err).splitlines() if ln.strip()]


def one_line(err: BaseException) -> str:
    """DataLoader workers and Ray tasks re-raise with the remote traceback in the message: keep its last line."""
    lines = error_lines(err)
    last = lines[-1] if lines else err.__class__.__name__
    return last.split("PipelineError: ", 1)[-1]


def first_line(err: BaseException, with_type: bool = False) -> str:
    """A library's own error (torch.onnx, huggingface_hub): its message leads, the detail that follows is noise.
    `with_type` prefixes the class name, for messages that mean little without it; capped at 300 characters."""
    lines = error_lines(err)
    if with_type:
        return f"{err.__class__.__name__}: {lines[0] if lines else ''}"[:300]
    return lines[0][:300] if lines else err.__class__.__name__


def last_output_line(proc) -> str:
    """The last non-empty line of a finished subprocess's stderr then stdout (stdout's when it printed any: tools
    such as the kaggle CLI print their failure there): what a one-line error quotes."""
    said = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    return said[-1] if said else "no output"
