"""Training one classifier: SGD with momentum, LR range test, ReduceLROnPlateau, best epoch by val macro-F1."""
from __future__ import annotations

import copy
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from classify.archs import AUX_LOSS_WEIGHT, BuiltModel, output_logits, set_train_mode
from classify.image_aug import mixed_loss, mixup_batch
from classify.lr_range import lr_range_test
from classify.metrics import macro_f1


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float | None = None             # None: from the LR range test
    momentum: float = 0.9
    weight_decay: float = 0.0
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    lr_range_start: float = 1e-6
    lr_range_end: float = 1.0
    lr_range_steps: int = 50
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    mixup: float = 0.0                  # mixup Beta(α, α) parameter; 0: off
    lr_pick: str = "min10"              # classify.lr_range.PICK_RULES
    freeze_bn: str = "eval"             # freeze mode: frozen part in eval mode, or "train" (BN stats, dropout on)
    loss: str = "cross_entropy"         # or mse / l1: a one-output regression head, best epoch by lowest val loss

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int                     # 1-based
    lr: float
    lr_range: dict[str, Any] | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch and ask torch for deterministic kernels where it has them."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def make_loader(dataset: Any, batch_size: int, *, shuffle: bool, seed: int = 0, num_workers: int = 0) -> Any:
    import torch
    from torch.utils.data import DataLoader

    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=num_workers,
                      drop_last=False)


def output_loss(logits: Any, y: Any, kind: str = "cross_entropy", reduction: str = "mean") -> Any:
    """Cross-entropy of class logits, or MSE / L1 of a one-output regression head against float targets."""
    import torch.nn.functional as F

    if kind == "cross_entropy":
        return F.cross_entropy(logits, y, reduction=reduction)
    return (F.mse_loss if kind == "mse" else F.l1_loss)(logits.float().reshape(-1), y.float(), reduction=reduction)


def classification_loss(built: BuiltModel, outputs: Any, y: Any, kind: str = "cross_entropy") -> Any:
    logits, aux = output_logits(outputs)
    loss = output_loss(logits, y, kind)
    if aux is not None:
        loss = loss + AUX_LOSS_WEIGHT * output_loss(aux, y, kind)
    return loss


def predict(built: BuiltModel, loader: Any, device: str, loss: str = "cross_entropy"
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """(softmax probabilities [N, C] — or a regression head's outputs [N, 1] —, true labels [N], mean loss) in eval
    mode."""
    import torch

    set_train_mode(built, False)
    probs, labels, total, n = [], [], 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits, _ = output_logits(built.model(x))
            total += float(output_loss(logits, y, loss, reduction="sum"))
            n += len(y)
            out = torch.softmax(logits.float(), 1) if loss == "cross_entropy" else logits.float()
            probs.append(out.cpu().numpy())
            labels.append(y.cpu().numpy())
    return np.concatenate(probs), np.concatenate(labels), total / max(1, n)


def training_mode(built: BuiltModel, cfg: TrainConfig) -> None:
    """Switch to training. ``freeze_bn="train"`` is tutorial-style freezing: the whole network in train mode, so the
    frozen part's batch-norm running statistics update and its dropout is on (its weights still do not train)."""
    if cfg.freeze_bn == "train":
        built.model.train()
    else:
        set_train_mode(built, True)


def _make_optimizer(built: BuiltModel, cfg: TrainConfig, lr: float) -> Any:
    import torch

    params = [p for p in built.model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def fit(built: BuiltModel, train_ds: Any, val_ds: Any, cfg: TrainConfig, *, desc: str = "train",
        progress: bool = True, val_score: Any = None) -> FitResult:
    """Train ``built.model`` in place; on return it holds the weights of the best epoch (val macro-F1; for a
    regression loss the lowest val loss)."""
    import torch
    from tqdm.auto import tqdm

    t0 = time.time()
    seed_everything(cfg.seed)
    device = cfg.device
    model = built.model.to(device)
    train_loader = make_loader(train_ds, cfg.batch_size, shuffle=True, seed=cfg.seed, num_workers=cfg.num_workers)
    val_loader = make_loader(val_ds, cfg.batch_size, shuffle=False, num_workers=cfg.num_workers)

    mix_rng = np.random.default_rng([cfg.seed, 1])    # mixup's own seeded stream: same λ and pairs per seed
    regression = cfg.loss != "cross_entropy"

    def batch_loss(x: Any, y: Any) -> tuple[Any, Any]:
        if cfg.mixup <= 0:
            outputs = model(x)
            return outputs, classification_loss(built, outputs, y, cfg.loss)
        x, y_b, lam = mixup_batch(x, y, cfg.mixup, mix_rng)
        outputs = model(x)
        return outputs, mixed_loss(lambda o, t: classification_loss(built, o, t, cfg.loss), outputs, y, y_b, lam)

    def step_loss(batch: Any) -> Any:
        x, y = batch
        training_mode(built, cfg)
        return batch_loss(x.to(device), y.to(device))[1]

    optimizer = _make_optimizer(built, cfg, cfg.lr or cfg.lr_range_start)
    lr_info = None
    lr = cfg.lr
    if lr is None:
        lr_info = lr_range_test(model, optimizer, train_loader, step_loss, start=cfg.lr_range_start,
                                end=cfg.lr_range_end, steps=cfg.lr_range_steps, pick=cfg.lr_pick)
        lr = float(lr_info["suggested_lr"])
        optimizer = _make_optimizer(built, cfg, lr)   # fresh momentum buffers
    for g in optimizer.param_groups:
        g["lr"] = lr
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=cfg.plateau_patience,
                                                           factor=cfg.plateau_factor)
    history: list[dict[str, float]] = []
    best_f1, best_epoch, best_state = -np.inf, 0, None    # regression scores -val_loss: any value beats -inf
    for epoch in range(1, cfg.epochs + 1):
        te = time.time()
        cur_lr = optimizer.param_groups[0]["lr"]
        total, correct, n = 0.0, 0, 0
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch}/{cfg.epochs}", leave=False, file=sys.stderr,
                   disable=not progress, unit="batch")
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            training_mode(built, cfg)
            optimizer.zero_grad(set_to_none=True)
            outputs, loss = batch_loss(x, y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
            correct += int((output_logits(outputs)[0].argmax(1) == y).sum()) if not regression else 0
            n += len(y)
            bar.set_postfix(loss=f"{total / n:.3f}")
        probs, labels, val_loss = predict(built, val_loader, device, cfg.loss)
        scheduler.step(val_loss)
        if regression:      # the best epoch has the lowest val loss
            val_f1, scores = -val_loss, {}
        else:
            # val_score(probs, labels): e.g. the per-clip macro-F1 of a segmented workspace (classify.clip_scores)
            val_f1 = macro_f1(labels, probs.argmax(1), probs.shape[1]) if val_score is None else \
                val_score(probs, labels)
            scores = {"train_accuracy": correct / max(1, n), "val_macro_f1": val_f1,
                      "val_accuracy": float((probs.argmax(1) == labels).mean())}
        history.append({"epoch": epoch, "lr": cur_lr, "train_loss": total / max(1, n), "val_loss": val_loss,
                        **scores, "seconds": time.time() - te})
        if val_f1 > best_f1:
            best_f1, best_epoch = val_f1, epoch
            best_state = copy.deepcopy(model.state_dict())
        if progress:
            h = history[-1]
            score = "" if regression else f", val macro-F1 {val_f1:.3f}"
            tqdm.write(f"{desc} epoch {epoch}/{cfg.epochs}: train loss {h['train_loss']:.3f}, val loss "
                       f"{val_loss:.3f}{score}, lr {cur_lr:.2g} ({h['seconds']:.1f} s)", file=sys.stderr)
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(history, best_epoch, lr, lr_info, time.time() - t0)
