"""`classify eval`: train each (architecture, mode, seed) on real and/or synthetic images, score on the real test split."""
from __future__ import annotations

import csv
import io
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from augment.errors import UserError
from augment.io_utils import atomic_dir, atomic_write_json, atomic_write_text, sha256_bytes
from augment.provenance import code_version, now_iso, write_run_record
from augment.workspace import Workspace
from classify import regression as reg
from classify.archs import ARCHS, BuiltModel, build_model, check_pretrained
from classify.clip_scores import clip_f1_scorer, split_scores
from classify.data import DataSplits, ImageDataset, ImageStore, Sample, SpecAugment, build_splits, check_images
from classify.head_only import cache_features, can_cache_features, head_only_model
from classify.image_aug import Chain, arm_tag, describe, preset_transforms
from classify.metrics import report_text
from classify.plots import plot_confusion, plot_learning_curves
from classify.results import append_summary, next_run_number, run_id, summary_row, write_table
from classify.trainer import FitResult, TrainConfig, fit, make_loader, predict, seed_everything


@dataclass
class EvalOptions:
    train: str = "real"
    archs: list[str] = field(default_factory=lambda: ["small_cnn"])
    modes: list[str] = field(default_factory=lambda: ["whole"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrained: str = "imagenet"
    synthetic_per_class: int = 1000
    input_size: int | None = None          # None: each architecture's own size
    augment: SpecAugment = field(default_factory=SpecAugment)
    aug_preset: str = "none"               # classify.image_aug.PRESETS
    train_config: TrainConfig = field(default_factory=TrainConfig)
    progress: bool = True
    init: str | None = None                # --init: a saved classifier to start from (classify/init_from.py)
    task: str = "classification"           # or regression: a continuous target (classify/regression.py)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train_config"] = self.train_config.to_dict()
        return d


def preflight(opts: EvalOptions) -> None:
    """Fail before any training: weights choice per architecture, and the missing-weights message."""
    from classify.weights import is_cached, missing_weights_message_many

    missing = [a for a in opts.archs if effective_pretrained(a, opts.pretrained) == "imagenet"
               and ARCHS[a].weights == "torchvision" and not is_cached(a) and not opts.init]
    if missing:
        raise UserError(missing_weights_message_many(missing))
    for arch in opts.archs:
        if opts.input_size is not None and opts.input_size < ARCHS[arch].min_input:
            raise UserError(f"--input-size {opts.input_size} is too small for {arch}; use at least "
                            f"{ARCHS[arch].min_input} (its default is {ARCHS[arch].input_size})")
        pretrained = effective_pretrained(arch, opts.pretrained)
        check_pretrained(arch, pretrained)
        if pretrained == "none" and "freeze" in opts.modes and not opts.init:
            warnings.warn(f"{arch} --mode freeze without pretrained weights trains only the head on random features",
                          stacklevel=2)


def effective_pretrained(arch: str, pretrained: str) -> str:
    """small_cnn has no pretrained weights: it always runs as 'none' (the default 'imagenet' is not an error)."""
    return "none" if ARCHS[arch].weights == "none" and pretrained == "imagenet" else pretrained


def arm_name(opts: EvalOptions) -> str:
    """The training arm: the data source plus any image-level augmentation, e.g. ``real~thesis``."""
    tag = arm_tag(opts.aug_preset, opts.train_config.mixup, opts.augment.time_shift, opts.augment.masks)
    return f"{opts.train}~{tag}" if tag else opts.train


def _clip_seconds(ws: Workspace) -> float | None:
    mel = ws.config.get("mel") or {}
    return float(mel["duration"]) if mel.get("duration") else None


def run_eval(ws: Workspace, opts: EvalOptions) -> list[dict[str, Any]]:
    """Every run of ``opts``; returns the metrics dict of each (also written under ``results/``)."""
    source = None
    if opts.init:
        from classify.init_from import init_note, load_init

        source = load_init(opts.init, ws, opts.archs)
        opts = replace(opts, input_size=opts.input_size or source.input_size)
        click.echo(init_note(source, ws.classes, ws))
    preflight(opts)
    splits = build_splits(ws, opts.train, opts.synthetic_per_class)
    regression = opts.task == "regression"
    if regression:
        splits = reg.with_targets(ws, splits)
    check_images(splits.train + splits.val + splits.test, ws.resolution)
    stores: dict[int, ImageStore] = {}
    features: dict[tuple, Any] = {}
    all_metrics: list[dict[str, Any]] = []
    first = None
    for arch in opts.archs:
        size = opts.input_size or ARCHS[arch].input_size
        store = stores.setdefault(size, ImageStore(size, splits.checked))
        for mode in opts.modes:
            for seed in opts.seeds:
                metrics = _one_run(ws, opts, splits, store, arch, mode, seed, features, source)
                first = first if first is not None else metrics["run_id"][:5]
                all_metrics.append(metrics)
                t = metrics["test"]
                click.echo(reg.run_line(metrics) if regression else
                           f"{metrics['run_id']}: test macro-F1 {t['macro_f1']:.3f}, accuracy {t['accuracy']:.3f} "
                           + (f"per clip (per segment {t['per_segment']['macro_f1']:.3f}) " if "per_segment" in t
                              else "")
                           + f"(val macro-F1 {metrics['val']['macro_f1']:.3f}, best epoch {metrics['best_epoch']})")
    name = f"eval-{first}-{all_metrics[-1]['run_id'][:5]}"
    paths = (reg.write_table if regression else write_table)(
        ws.results_dir, name, all_metrics, f"classify eval, arm {arm_name(opts)}, test real ({ws.dataset_name})")
    click.echo(f"table: {paths['md']}")
    return all_metrics


def _datasets(opts: EvalOptions, splits: DataSplits, store: ImageStore, arch: str,
              clip_seconds: float | None) -> dict[str, ImageDataset]:
    spec = ARCHS[arch]
    pixel, post = preset_transforms(opts.aug_preset, clip_seconds)
    return {"train": ImageDataset(splits.train, store, spec.mean, spec.std, Chain((opts.augment, post)), pixel),
            "val": ImageDataset(splits.val, store, spec.mean, spec.std),
            "test": ImageDataset(splits.test, store, spec.mean, spec.std)}


def _one_run(ws: Workspace, opts: EvalOptions, splits: DataSplits, store: ImageStore, arch: str, mode: str,
             seed: int, features: dict[tuple, Any], source: Any = None) -> dict[str, Any]:
    t0 = time.time()
    pretrained = "init" if source is not None else effective_pretrained(arch, opts.pretrained)
    bn_train = mode == "freeze" and opts.train_config.freeze_bn == "train"
    label = (arm_name(opts), arch, "freeze~bntrain" if bn_train else mode, pretrained, f"seed{seed}")
    desc = "-".join(label)
    cfg = TrainConfig(**{**opts.train_config.to_dict(), "seed": seed})
    seed_everything(seed)                                  # the new head's initialisation depends on the seed
    built = build_model(arch, len(splits.classes), mode, "none" if source is not None else pretrained)
    init = None
    if source is not None:
        from classify.init_from import apply_init

        init = apply_init(built, source, splits.classes)
    regression = opts.task == "regression"
    if regression:      # a fresh one-output linear head (after --init: the backbone is kept)
        reg.to_regressor(built)
    ds: dict[str, Any] = _datasets(opts, splits, store, arch, _clip_seconds(ws))
    trained = built
    cached = can_cache_features(mode, cfg.freeze_bn, ds["train"], cfg.mixup)
    if cached:      # the frozen network runs once per image; only the head trains (same result, far faster)
        built.model.to(cfg.device)
        shared = pretrained == "imagenet"     # then the backbone is the same for every seed: compute once
        feats = features.get((arch, store.size)) if shared else None
        if feats is None:
            feats = {k: cache_features(built, d, batch_size=cfg.batch_size, device=cfg.device,
                                       desc=f"{desc} {k} features", progress=opts.progress) for k, d in ds.items()}
            if shared:
                features[(arch, store.size)] = feats
        ds = feats
        trained = head_only_model(built)
    # per-clip scores (mean probabilities over a clip's segments) are the headline and pick the best epoch
    result = fit(trained, ds["train"], ds["val"], cfg, desc=desc, progress=opts.progress,
                 val_score=clip_f1_scorer(splits.clips.get("val", ())))
    scored = {}
    for split in ("val", "test"):
        probs, labels, loss = predict(trained, make_loader(ds[split], cfg.batch_size, shuffle=False), cfg.device,
                                      cfg.loss)
        clips = splits.clips.get(split, ())
        scored[split] = reg.score_split(probs, labels, loss, splits.info, clips) if regression else \
            (probs, labels, split_scores(probs, labels, clips, splits.classes, loss))
    config = {**opts.to_dict(), "arch": arch, "mode": mode, "seed": seed, "pretrained": pretrained,
              "input_size": store.size, "cached_features": cached, "train_config": cfg.to_dict(),
              "workspace": str(ws.root), "init": init}
    # numbered when written, so runs finishing in parallel in one workspace do not take the same number
    rid = run_id(next_run_number(ws.results_dir), *label)
    metrics = {
        "run_id": rid, "created": now_iso(), "code_version": code_version(),
        "train": opts.train, "arm": arm_name(opts), "test_source": "real",
        "augmentation": describe(opts.aug_preset, _clip_seconds(ws), cfg.mixup), "arch": arch, "mode": mode, "pretrained": pretrained,
        "seed": seed, "freeze_bn": cfg.freeze_bn if mode == "freeze" else None, "classes": splits.classes,
        "task": opts.task, "target": ws.target_name,
        "n_train": len(splits.train), "n_val": len(splits.val), "n_test": len(splits.test),
        "val": scored["val"][2], "test": scored["test"][2],
        "lr": result.lr, "lr_range": _lr_summary(result), "best_epoch": result.best_epoch,
        "epochs": cfg.epochs, "history": result.history, "model": built.info, "init": init,
        "seconds": time.time() - t0, "config": config, "data": splits.info,
    }
    _write_run(ws, metrics, built, result, scored, splits, source)
    append_summary(ws.results_dir, [reg.summary_row(metrics) if regression else summary_row(metrics)])
    return metrics


def _lr_summary(result: FitResult) -> dict[str, Any] | None:
    if result.lr_range is None:
        return None
    return {k: result.lr_range[k] for k in ("suggested_lr", "pick", "rule", "candidates", "note", "start", "end",
                                            "steps", "lrs", "losses", "lrfinder_losses", "raw_losses")}


def _predictions_csv(ws: Workspace, scored: dict[str, Any], splits: DataSplits) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["split", "image", "true", "pred", "correct"] + [f"p_{c}" for c in splits.classes])
    for split, samples in (("val", splits.val), ("test", splits.test)):
        probs, labels, _ = scored[split]
        for (path, label), p in zip(samples, probs):
            pred = int(np.argmax(p))
            w.writerow([split, _rel(ws.root, path), splits.classes[label], splits.classes[pred], int(pred == label)]
                       + [f"{v:.5f}" for v in p])
    return buf.getvalue()


def _rel(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _write_run(ws: Workspace, metrics: dict[str, Any], built: BuiltModel, result: FitResult,
               scored: dict[str, Any], splits: DataSplits, source: Any = None) -> Path:
    rid = metrics["run_id"]
    title = f"{metrics['arch']} {metrics['mode']} ({metrics['pretrained']}), train {metrics['train']}, " \
            f"seed {metrics['seed']}"
    with atomic_dir(ws.results_dir / rid) as d:
        atomic_write_json(d / "metrics.json", metrics)
        write_run_record(d / "run.json", metrics["config"], seeds={"seed": metrics["seed"]},
                         data_hashes={**splits.info, "train_files": _file_list_digest(ws, splits.train),
                                      "val_files": _file_list_digest(ws, splits.val)})
        if metrics["task"] == "regression":     # scores, scatter plot, loss curves (no saved classifier)
            reg.write_run_files(d, ws.root, metrics, scored, splits, title)
            return ws.results_dir / rid
        atomic_write_text(d / "report.txt", report_text(metrics["val"], f"{rid} - validation (best epoch)") + "\n"
                          + report_text(metrics["test"], f"{rid} - real test split"))
        atomic_write_text(d / "predictions.csv", _predictions_csv(ws, scored, splits))
        plot_confusion(metrics["test"]["confusion"], splits.classes, d / "confusion_matrix.png",
                       f"{title}: test macro-F1 {metrics['test']['macro_f1']:.3f}")
        plot_learning_curves(result.history, result.lr_range, result.best_epoch, d / "learning_curves.png", title)
        _save_model(d, ws, metrics, built, splits, source)
    return ws.results_dir / rid


def _file_list_digest(ws: Workspace, samples: list[Sample]) -> str:
    """Digest of which files (workspace-relative) with which labels a run used; contents are in the manifests."""
    return sha256_bytes("\n".join(f"{_rel(ws.root, p)},{y}" for p, y in samples).encode("utf-8"))


def _save_model(folder: Path, ws: Workspace, metrics: dict[str, Any], built: BuiltModel, splits: DataSplits,
                source: Any) -> None:
    """The best epoch's weights + model.json (classify/saved_model.py), for `--init` and `classify predict`."""
    from classify.saved_model import save_model, training_hashes

    inherited = source.training_sha256 if source is not None else ()
    save_model(folder, built, classes=splits.classes, input_size=metrics["config"]["input_size"], ws=ws,
               run_id=metrics["run_id"], training=training_hashes(ws, splits.checked.values(), inherited),
               pretrained=metrics["pretrained"], init=metrics["init"])
