"""`huishou plots-template`: write the offline page template `dvc plots show` uses (.dvc/config sets
plots.html_template to .dvc/plots/offline.html): Vega, Vega-Lite and Vega-Embed inline instead of a CDN.

Reads nothing; writes .dvc/plots/offline.html (or --out). `make repro` and `make test` write it.
"""

from __future__ import annotations

from pathlib import Path

from huishou.core.io import write_text
from huishou.core.plots import offline_page_template

PARAMS = ()


def run(settings, out: str = ".dvc/plots/offline.html") -> dict:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(offline_page_template(), path)
    return {"template": str(path), "bytes": path.stat().st_size}
