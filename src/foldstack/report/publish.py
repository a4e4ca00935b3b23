"""A report folder replaced whole: built in a hidden temporary folder beside it, then swapped in with two renames
(the old one out of the way, the new one in), so a crash leaves the previous report or the new one, never half
of one. A report is a derived view, rebuilt on every run: not a versioned artifact."""
import os
from contextlib import contextmanager
from pathlib import Path

from ..utils.io import dead_staging, remove_tree, reporting_write_errors, staging_name


def remove_leftovers(final: Path) -> None:
    """What a killed run left beside `final`: its temporary folder, and the previous report it had moved out of
    the way (put back when no report took its place)."""
    for leftover, what in dead_staging(final.parent, final.name):
        if what == "old" and not final.exists():
            os.rename(leftover, final)
        else:
            remove_tree(leftover)


@contextmanager
def rebuilt(final: Path):
    """Yield an empty temporary folder; when the block succeeds it becomes `final` (replacing the folder there),
    when it fails it is removed and `final` is left as it was."""
    final = Path(final)
    with reporting_write_errors(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(final)
        tmp, old = final.parent / staging_name(final.name), final.parent / staging_name(final.name, "old")
        remove_tree(tmp)
        tmp.mkdir()
    try:
        yield tmp
        with reporting_write_errors(final):
            if final.exists():
                os.rename(final, old)
            os.rename(tmp, final)
    except BaseException:
        if old.exists() and not final.exists():  # the swap itself failed: the previous report goes back
            os.rename(old, final)
        remove_tree(tmp)
        raise
    remove_tree(old)
