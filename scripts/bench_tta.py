"""Benchmark: the cost of TTA. Fold 0's model(s) predict the test images once per TTA setting; the table shows
each setting's views, wall time, images/s, and its time against n_views x the identity-only pass (below 1 means
the batched views share decoding and loader work). Not a test; the README figures come from it, e.g.
    python scripts/bench_tta.py --comp flowers --set folds.n_splits=3 train.epochs=8 --tta none hflip d4 ten_crop
"""
from foldstack.cli import run_stage
from foldstack.lineage import predict_dir
from foldstack.utils.timing import seconds_of


def bench(ctx) -> None:
    import numpy as np

    from foldstack.engine.inference import inference_loader, load_fold_models, predict_probs, tta_views
    from foldstack.engine.runtime import resolve_device

    cfg, device = ctx.cfg, resolve_device(ctx.cfg.runtime.device)
    fold_dir = predict_dir(ctx).trained.dirs[0]
    models = load_fold_models(ctx.cfg, ctx.targets.shape[1], fold_dir, device)
    loader = inference_loader(ctx.cfg, ctx.images, ctx.images.test_rows(np.arange(len(ctx.test.ids))), device)
    dataset = loader.dataset
    print(f"{ctx.comp}: {len(dataset)} test images at {cfg.data.img_size}px, {cfg.model.name} x {len(models)} "
          f"model(s) on {device}\n")
    print("| TTA | views | seconds | images/s | time / (views x identity time) |\n|---|---|---|---|---|")
    base = None
    for setting in ctx.args.tta:
        names = [] if setting == "none" else setting.split("+")
        run_cfg = cfg.model_copy(update={"predict": cfg.predict.model_copy(update={"tta": names})})
        views = tta_views(run_cfg)
        if base is None:  # the first pass pays for worker start-up and allocator warm-up
            predict_probs(models, loader, run_cfg, device, views, desc="warm-up")
        seconds = seconds_of(lambda: predict_probs(models, loader, run_cfg, device, views, desc=setting), device=device)
        base = base or seconds
        print(f"| {setting} | {len(views)} | {seconds:.2f} | {len(dataset) / seconds:.0f} | "
              f"{seconds / (len(views) * base):.2f} |", flush=True)


def add_arguments(p):
    p.add_argument("--tta", nargs="+", default=["none", "hflip", "d4", "ten_crop"],
                   help="TTA settings, first one the baseline; combine views with +, e.g. d4+five_crop")


if __name__ == "__main__":
    run_stage(bench, __doc__, add_arguments=add_arguments)
