"""Click commands of ``classify``: ``eval``, ``baseline``, ``archs`` (heavy imports happen inside each)."""
from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any, Iterator

import click

from augment.cli_common import parse_int_list, workspace_option
from augment.errors import UserError, user_device


@contextlib.contextmanager
def user_warnings() -> Iterator[None]:
    """Show Python warnings raised by our code as one ``warning: ...`` line each on stderr."""
    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        click.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' -> distinct non-negative seeds; UserError otherwise."""
    seeds = parse_int_list(text, "--seeds")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds must be distinct non-negative integers like 0,1,2, got {text!r}")
    return seeds


@click.command("eval")
@click.option("--train", "train", type=click.Choice(["real", "synthetic", "real+synthetic", "augmented",
                                                    "real+augmented", "real+synthetic+augmented"]), default="real",
              help="Training data: the real train split, synthetic/ (augment generate) and/or augmented/ (augment "
                   "classic) images, each 80/20 train/val; arms with real data keep the real val split.")
@click.option("--test", "test", type=click.Choice(["real"]), default="real",
              help="Test data: always the workspace's untouched real test split.")
@click.option("--arch", default="small_cnn",
              help="Architecture(s), comma-separated, or 'all' (the six torchvision ones); see `classify archs`.")
@click.option("--mode", default="whole", type=click.Choice(["freeze", "whole", "both"]),
              help="freeze: train only a new head on the frozen network; whole: fine-tune every layer.")
@click.option("--seeds", default="0,1,2", help="Classifier seeds, e.g. 0,1,2 or 0-4; one run per seed.")
@click.option("--pretrained", default="imagenet", type=click.Choice(["imagenet", "none"]),
              help="ImageNet weights (torchvision: from the local torch cache only) or random initialisation. "
                   "small_cnn always starts from scratch.")
@click.option("--init", "init", default=None, metavar="RUN_DIR|FILE",
              help="Start from a classifier saved by an earlier `classify eval` (its results/NNNNN-... folder or "
                   "model.json/model.safetensors; any workspace): its backbone always, its head too when the classes "
                   "are the same in the same order. Replaces --pretrained; --arch must be the source's; --input-size "
                   "defaults to the source's. Refused when the source trained on any of this workspace's test items.")
@click.option("--synthetic-per-class", default=1000, type=click.IntRange(min=2),
              help="Synthetic (and augmented) images per class (split 80/20 train/val; all if fewer exist).")
@click.option("--epochs", default=20, type=click.IntRange(min=1))
@click.option("--batch-size", default=16, type=click.IntRange(min=1))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Learning rate; default: picked by an LR range test (see --lr-pick).")
@click.option("--lr-pick", type=click.Choice(["steepest", "min10"]), default=None,
              help="LR range test pick: steepest (torch-lr-finder's suggestion, the thesis' rule: steepest descent "
                   "of the smoothed loss) or min10 (minimum of the smoothed loss / 10).  [default: from --defaults]")
@click.option("--freeze-bn", type=click.Choice(["eval", "train"]), default=None,
              help="--mode freeze: eval keeps the frozen network's batch-norm statistics and dropout in eval mode "
                   "(fast: its features are computed once); train lets BN statistics update and keeps dropout on, "
                   "as tutorial-style freezing does (the network runs every epoch).  [default: from --defaults]")
@click.option("--defaults", "defaults", type=click.Choice(["toolkit", "thesis"]), default="toolkit",
              show_default=True,
              help="Default set for --lr-pick and --freeze-bn: toolkit (min10, eval) or thesis (steepest, train).")
@click.option("--lr-range-steps", default=50, type=click.IntRange(min=5), help="Mini-batches in the LR range test.")
@click.option("--lr-range-end", default=1.0, type=click.FloatRange(min=1e-5), show_default=True,
              help="Largest learning rate of the LR range test (from 1e-6; torch-lr-finder's default end_lr is 10).")
@click.option("--input-size", type=click.IntRange(min=16), default=None,
              help="Resize images to this size for every architecture [default: per architecture].")
@click.option("--time-shift", default=0.0, type=click.FloatRange(0, 0.5),
              help="Training augmentation: random circular shift in time of up to this fraction of the width.")
@click.option("--spec-masks", default=0, type=click.IntRange(min=0),
              help="Training augmentation: SpecAugment frequency and time masks of each kind (up to 10% each).")
@click.option("--aug-preset", default="none", type=click.Choice(["none", "thesis", "specaugment"]),
              help="Training augmentation preset: thesis (rotation ±5°, brightness ±0.1, contrast ×[0.9, 1.1], "
                   "Gaussian noise sd 0.02) or specaugment (one frequency mask ≤ 27/80 of the height, one time "
                   "mask ≤ 1 s; Park et al. 2019).")
@click.option("--mixup", default=0.0, type=click.FloatRange(min=0),
              help="Training augmentation: mixup with λ ~ Beta(ALPHA, ALPHA) per batch (0: off; 0.2 is common).")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None,
              help="regression: a one-output linear head predicts a continuous target (`augment prepare "
                   "--continuous`), scored by MAE, RMSE, R², Spearman and Pearson.  [default: the workspace's]")
@click.option("--loss", type=click.Choice(["mse", "l1"]), default=None,
              help="--task regression: the training loss; the best epoch has the lowest val loss.  [default: mse]")
@click.option("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
@click.option("--workers", default=0, type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@workspace_option
def eval_cmd(workspace: str | None, train: str, test: str, arch: str, mode: str, seeds: str, pretrained: str,
             synthetic_per_class: int, epochs: int, batch_size: int, lr: float | None, lr_pick: str | None,
             freeze_bn: str | None, defaults: str, lr_range_steps: int, input_size: int | None, time_shift: float,
             spec_masks: int, aug_preset: str, mixup: float, device: str, workers: int, quiet: bool,
             lr_range_end: float = 1.0, init: str | None = None, task: str | None = None,
             loss: str | None = None) -> None:
    """Train classifiers on real and/or synthetic images and score them on the real test split."""
    from augment.workspace import Workspace
    from classify.archs import parse_archs, parse_modes
    from classify.data import SpecAugment
    from classify.eval_defaults import resolve_defaults
    from classify.evaluate import EvalOptions, run_eval
    from classify.regression import resolve_task
    from classify.trainer import TrainConfig

    archs = parse_archs(arch)
    modes = parse_modes(mode)
    seed_list = parse_seeds(seeds)
    ws = Workspace.load(workspace)
    task, loss = resolve_task(ws, task, loss, train)
    chosen = resolve_defaults(defaults, lr_pick=lr_pick, freeze_bn=freeze_bn)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_range_steps=lr_range_steps,
                      lr_range_end=lr_range_end,
                      device=user_device(device), num_workers=workers, mixup=mixup, loss=loss, **chosen)
    opts = EvalOptions(train=train, archs=archs, modes=modes, seeds=seed_list, pretrained=pretrained,
                       synthetic_per_class=synthetic_per_class, input_size=input_size,
                       augment=SpecAugment(time_shift=time_shift, masks=spec_masks), aug_preset=aug_preset,
                       train_config=cfg, init=init, task=task,
                       progress=not quiet and sys.stderr is not None)
    with user_warnings():
        runs = run_eval(ws, opts)
    # nothing is picked by its test score: the line reports every run's test score alike
    key, name = ("mae", "MAE") if task == "regression" else ("macro_f1", "macro-F1")
    scores = [m["test"][key] for m in runs]
    click.echo(f"{len(runs)} run(s) done; test {name} {min(scores):.3f}–{max(scores):.3f} over the runs; "
               f"summary: {ws.results_dir / 'summary.csv'}")


@click.command("predict")
@click.argument("files", nargs=-1, required=True, metavar="IMAGE|AUDIO...")
@click.option("--model", "model", required=True, metavar="RUN_DIR|FILE",
              help="A `classify eval` run folder (results/NNNNN-...) or its model.json / model.safetensors.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of CSV lines.")
@click.option("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
@click.option("--batch-size", default=16, type=click.IntRange(min=1))
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line on stderr.")
def predict_cmd(files: tuple[str, ...], model: str, as_json: bool, device: str, batch_size: int,
                quiet: bool) -> None:
    """Class probabilities of images or audio files (audio rendered with the mel settings saved with the model)."""
    from pathlib import Path

    from classify.predict import format_csv, format_json, predict_files
    from classify.saved_model import build_saved, load_saved

    dev = user_device(device)
    saved = load_saved(model)
    built = build_saved(saved, dev)
    paths = [Path(f) for f in files]
    with user_warnings():
        probs = predict_files(paths, saved, built, device=dev, batch_size=batch_size,
                              progress=not quiet and sys.stderr is not None)
    click.echo((format_json if as_json else format_csv)(paths, probs, saved.classes), nl=as_json)
    if not quiet:
        click.echo(f"{len(paths)} file(s) scored by {saved.arch} {saved.config_path.parent} "
                   f"(classes {', '.join(saved.classes)})", err=True)


@click.command("archs")
def archs_cmd() -> None:
    """List the architectures, their input size and where their ImageNet weights come from."""
    from classify.archs import describe_archs

    rows = describe_archs()
    width = max(len(r["arch"]) for r in rows)
    for r in rows:
        click.echo(f"{r['arch']:<{width}}  {r['input']:>3}px  weights: {r['imagenet_weights']}  - {r['about']}")


@click.command("baseline")
@click.option("--models", default="all", help="Comma-separated subset of svm_linear, svm_rbf, knn, random_forest, "
              "extra_trees, or 'all' (on a continuous workspace: SVR and the regressor of each).")
@click.option("--audio-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the source audio [default: the one recorded by `augment prepare`].")
@click.option("--sr", default=22050, type=click.IntRange(min=1000), help="Sample rate for feature extraction (Hz).")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Seed of the CV folds and the tree ensembles.")
@click.option("--trees", default=300, type=click.IntRange(min=1), help="Trees in the random forest and extra trees.")
@click.option("--folds", default=5, type=click.IntRange(min=2),
              help="Cross-validation folds for the hyper-parameters (fewer if the rarest class is smaller).")
@click.option("--jobs", default=0, type=click.IntRange(min=0), help="Parallel processes (0: all CPU cores).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@workspace_option
def baseline_cmd(workspace: str | None, models: str, audio_dir: str | None, sr: int, seed: int, trees: int,
                 folds: int, jobs: int, quiet: bool) -> None:
    """Handcrafted audio features + classic classifiers (SVM, kNN, random forest, extra trees) on the test split."""
    from augment.workspace import Workspace
    from classify.baseline.run import parse_models, run_baseline

    names = parse_models(models)
    ws = Workspace.load(workspace)
    with user_warnings():
        metrics = run_baseline(ws, models=names, audio_dir=audio_dir, sr=sr, seed=seed, trees=trees, folds=folds, jobs=jobs,
                               progress=not quiet)
    chosen = metrics["selected"]
    r = metrics["models"][chosen]
    if metrics.get("task") == "regression":
        click.echo(f"baseline done: selected {chosen} by CV R² on train+val ({r['cv_r2']:.3f}); its test MAE "
                   f"{r['test']['mae']:.3f}; {ws.results_dir / metrics['run_id']}")
        return
    click.echo(f"baseline done: selected {chosen} by CV macro-F1 on train+val ({r['cv_macro_f1']:.3f}); its test "
               f"macro-F1 {r['test']['macro_f1']:.3f}; {ws.results_dir / metrics['run_id']}")


@click.command("compare")
@click.option("--runs-a", required=True,
              help="Reference arm A: run ids / 5-digit numbers / folders, comma-separated (ID:model for one model of "
                   "a baseline run), or a filter like arm=real,arch=small_cnn,mode=whole (newest run per seed).")
@click.option("--runs-b", required=True, help="Arm B, same forms as --runs-a; paired with A by seed.")
@click.option("--resamples", default=2000, type=click.IntRange(min=100),
              help="Bootstrap resamples (and Monte-Carlo permutations when the test is not exact).")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Seed of the bootstrap and permutations.")
@click.option("--name", default=None, help="Output name under results/compare/ [default: compare-A-vs-B numbers].")
@workspace_option
def compare_cmd(workspace: str | None, runs_a: str, runs_b: str, resamples: int, seed: int, name: str | None) -> None:
    """Paired difference in test macro-F1 of arm B minus arm A, with a 95 % bootstrap interval and a p-value."""
    import re

    from augment.workspace import Workspace
    from classify.compare import compare_runs, default_name, load_run, select, summary_line, write_outputs

    ws = Workspace.load(workspace)
    a = [load_run(d, model) for d, model in select(ws, runs_a)]
    b = [load_run(d, model) for d, model in select(ws, runs_b)]
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+~-]*", name):
        raise UserError(f"--name must be a plain file name (letters, digits, . _ + ~ -), got {name!r}")
    result = compare_runs(a, b, n_resamples=resamples, seed=seed)
    paths = write_outputs(ws, result, name or default_name(a, b))
    click.echo(summary_line(result))
    click.echo(f"table: {paths['md']}; plot: {paths['png']}")
    click.echo(str(paths["json"]))
