"""tools/check_imports.py: import cycles and the layering tools -> classify -> augment -> stylegan_ada."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from tests.support.paths import REPO as ROOT

sys.path.insert(0, str(ROOT / "tools"))
try:
    import check_imports
finally:
    sys.path.remove(str(ROOT / "tools"))


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_repository_has_no_cycles_and_keeps_its_layers():
    report = check_imports.check(ROOT)
    assert report.modules > 100 and len(report.edges) > 300  # it really read the packages
    assert report.cycles == [] and report.violations == []
    # An allow-list entry whose import is gone must be removed, not kept as a blanket pass.
    assert {(e.src, e.dst) for e, _ in report.allowed} == set(check_imports.ALLOWED)


def test_planted_cycles_and_violations_are_found(tmp_path, capsys):
    _write(tmp_path, {
        "stylegan_ada/__init__.py": "",
        "stylegan_ada/core.py": "import os\nfrom augment import helpers\n",  # reaches up one layer
        "stylegan_ada/ops/__init__.py": "",
        "stylegan_ada/ops/a.py": "import importlib\nB = importlib.import_module('stylegan_ada.ops.b')\n",
        "stylegan_ada/ops/b.py": "def f():\n    from . import c\n",  # relative and lazy
        "stylegan_ada/ops/c.py": "from stylegan_ada.ops.a import B\n",  # closes a -> b -> c -> a
        "augment/__init__.py": "",
        "augment/helpers.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from classify.models import Model  # never runs: not an import
            else:
                import stylegan_ada.core
            """,
        "augment/cli.py": "COMMANDS = {'eval': 'classify.models:main', 'mine': 'augment.helpers:run'}\n",
        "classify/__init__.py": "",
        "classify/models.py": "from augment.helpers import x\nfrom stylegan_ada import core\n",  # downwards: fine
        "tools/bench_common.py": "",
        "tools/bench_x.py": "import bench_common\nfrom classify import models\n",
    })
    report = check_imports.check(tmp_path, allowed={})
    assert report.cycles == [["augment.helpers", "stylegan_ada.core", "augment.helpers"],
                             ["stylegan_ada.ops.a", "stylegan_ada.ops.b", "stylegan_ada.ops.c", "stylegan_ada.ops.a"]]
    found = sorted((e.src, e.dst, e.line, e.lazy) for e in report.violations)
    assert found == [("augment.cli", "classify.models", 1, True), ("stylegan_ada.core", "augment.helpers", 2, False)]
    assert ("tools.bench_x", "tools.bench_common") in {(e.src, e.dst) for e in report.edges}

    assert check_imports.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "cycle: stylegan_ada.ops.a -> stylegan_ada.ops.b -> stylegan_ada.ops.c -> stylegan_ada.ops.a" in out
    assert any(line.startswith("layering: stylegan_ada/core.py:2 stylegan_ada.core imports augment.helpers;")
               for line in out)
    assert out[-1].endswith("2 cycles, 2 layering violations, 0 allowed")

    allowed = {("stylegan_ada.core", "augment.helpers"): "planted", ("stylegan_ada.ops.c", "stylegan_ada.ops.a"): "x",
               ("augment.cli", "classify.models"): "planted"}
    assert check_imports.check(tmp_path, allowed=allowed).ok
