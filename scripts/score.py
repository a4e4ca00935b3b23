"""Score a submission against a labels file with the competition's metric: make score LABELS=<csv>."""
from foldstack.cli import run_stage
from foldstack.submission import score_file


def score(ctx) -> None:
    comp, labels, submission = ctx.cfg.competition, ctx.args.labels, ctx.args.submission
    value = score_file(ctx.root, submission, labels, ctx.test.frame, comp)
    print(f"{submission}: {comp.metric} = {value:.5f} against {labels}")


def add_arguments(p):
    p.add_argument("--labels", required=True, help="CSV with the true test labels (id + target columns)")
    p.add_argument("--submission", default="submission.csv")


if __name__ == "__main__":
    run_stage(score, __doc__, add_arguments=add_arguments)
