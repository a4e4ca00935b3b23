"""The plain-text tables the stages print (export, summary, budget, plan): one layout for all of them."""


def format_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Header, a dashed rule, then the rows; each column as wide as its widest cell, two spaces apart. The first
    `left` columns are left-aligned (names), the others right-aligned (numbers line up on their last digit)."""
    cells = [list(header)] + [list(r) for r in rows]
    if any(len(r) != len(header) for r in cells):
        raise ValueError(f"every row needs {len(header)} cells ({', '.join(header)})")
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])
