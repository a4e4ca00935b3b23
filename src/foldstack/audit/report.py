"""The audit's findings: one line per check and artifact, PASS / FAIL / WARN / INFO / SKIP, printed and kept as JSON."""
from dataclasses import asdict, dataclass, field

STATUSES = ("PASS", "FAIL", "WARN", "INFO", "SKIP")
EXAMPLES = 5  # offending rows named per finding (the count says how many there are)


@dataclass
class Finding:
    check: str            # folds, models, oof, stacks, pseudo, distill, duplicates, classes
    status: str           # PASS / FAIL / WARN / INFO / SKIP
    artifact: str         # path relative to the project root ('' for the input folder)
    message: str
    rows: list = field(default_factory=list)   # offending row ids (the first few)
    count: int = 0                             # how many rows (or pairs) the finding is about


@dataclass
class Report:
    comp: str
    findings: list = field(default_factory=list)
    tables: list = field(default_factory=list)  # (title, pandas.DataFrame)
    notes: list = field(default_factory=list)

    def add(self, check: str, status: str, artifact: str, message: str, rows=(), count: int = 0) -> None:
        assert status in STATUSES, status
        self.findings.append(Finding(check, status, artifact, message, list(rows)[:EXAMPLES], count))

    def failures(self) -> list:
        return [f for f in self.findings if f.status == "FAIL"]

    def lines(self) -> list[str]:
        width = max((len(f.check) for f in self.findings), default=6)
        out = list(self.notes)
        for f in self.findings:
            where = f"{f.artifact}: " if f.artifact else ""
            out.append(f"{f.status:<4}  {f.check:<{width}}  {where}{f.message}")
        for title, table in self.tables:
            out += ["", title, table.to_string()]
        counts = {s: sum(f.status == s for f in self.findings) for s in STATUSES}
        out += ["", "audit: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
        return out

    def to_json(self) -> dict:
        return dict(comp=self.comp, notes=self.notes, findings=[asdict(f) for f in self.findings],
                    tables={title: table.reset_index().to_dict(orient="records") for title, table in self.tables},
                    summary={s: sum(f.status == s for f in self.findings) for s in STATUSES})


def quote_ids(ids, n: int = 3) -> str:
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")
