"""``classify eval --init``: start training from a saved classifier (classify/saved_model.py).

The backbone always comes from the source; the head too when the classes are the same names in the same order, else
the new head keeps its seeded random initialisation. Refused: another architecture than ``--arch``, and a target
workspace with a test item (image or source audio, by sha256) among the source's training items — the model would
then be scored on clips it was trained or selected on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from augment.errors import UserError
from classify.saved_model import SavedModel, check_state, copy_weights, load_saved


def load_init(path: str | Path, ws: Any, archs: Sequence[str]) -> SavedModel:
    """The verified source model for ``--init PATH`` on ``ws``; UserError for another arch or a test-split leak."""
    saved = load_saved(path)
    other = [a for a in archs if a != saved.arch]
    if other:
        raise UserError(f"--init {path} is a {saved.arch} classifier, but --arch asks for {', '.join(other)}; "
                        f"pass `--arch {saved.arch}` (--init continues training the same network)")
    check_test_overlap(saved, ws, path)
    return saved


def check_test_overlap(saved: SavedModel, ws: Any, path: str | Path) -> None:
    """Refuse when any test image or test source clip of ``ws`` is among the items the source model trained on."""
    seen = saved.training_sha256
    hits = [r for r in ws.rows() if r.split == "test" and (r.image_sha256 in seen or r.source_sha256 in seen)]
    if hits:
        raise UserError(f"--init {path} was trained on data that holds {len(hits)} of this workspace's test items "
                        f"(e.g. {hits[0].image}, source {hits[0].source}); its score here would not be a test score "
                        "— train the source on a workspace whose train/val splits leave this test split out (e.g. "
                        "prepared with the same test split)")


def is_head(key: str, heads: Sequence[str]) -> bool:
    return any(key == h or key.startswith(h + ".") for h in heads)


def apply_init(built: Any, saved: SavedModel, classes: Sequence[str]) -> dict[str, Any]:
    """Copy the source's weights into ``built`` (a fresh model of the same arch); returns the record of what was
    taken (metrics.json / run.json ``init``)."""
    keep_head = saved.classes == list(classes)
    keys = [k for k in built.model.state_dict() if keep_head or not is_head(k, built.head_names)]
    state = saved.state if keep_head else {k: v for k, v in saved.state.items() if not is_head(k, built.head_names)}
    check_state(built.model, state, keys, f"--init {saved.weights_path}")
    copy_weights(built.model, state, keys)
    return {**saved.record(), "head": "kept" if keep_head else "new", "tensors_copied": len(keys)}


def init_note(saved: SavedModel, classes: Sequence[str], ws: Any) -> str:
    """The one line `classify eval` prints about what ``--init`` takes from the source."""
    src = saved.config_path.parent
    if saved.classes == list(classes):
        note = f"init: backbone and head from {src} (same classes {', '.join(classes)})"
    else:
        note = (f"init: backbone from {src}; a new head for classes {', '.join(classes)} (the source's are "
                f"{', '.join(saved.classes)})")
    theirs, ours = saved.workspace, ws.config
    same_test = theirs.get("test_sha256") == ours["splits"].get("test_sha256")
    note += "; same test split as the source's workspace" if same_test else \
        "; the source's workspace had another test split (none of this one's test items are in its training data)"
    if theirs.get("mel") != ours.get("mel") or theirs.get("image") != ours.get("image"):
        note += "; note: the source workspace turned audio into images with other settings"
    return note
