"""Where the repository, the shared data and the StyleGAN2-ADA fixtures are."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "stylegan2_ada"
