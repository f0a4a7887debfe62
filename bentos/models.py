"""Register the trained models as BentoML models (`aigq-ctr`, `aigq-direct`), tagged by the
model's own version so registering an unchanged model twice is a no-op."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.config import aigq_home
from core.errors import AigqError
from models.base_lm import load
from models.direct import newest_direct_model
from models.generator import model_version
from serving.ranking import load_scorer


def _tag_version(model_dir: Path, weights: str) -> str:
    return f"{model_dir.name.replace('_', '-')}-{int((model_dir / weights).stat().st_mtime)}"


def register(name: str, model_dir: Path, weights: str, version: str) -> str:
    import bentoml
    from bentoml.exceptions import NotFound

    if not (model_dir / weights).exists():
        raise AigqError(f"{model_dir}: no {weights}; train the model first")
    tag = f"{name}:{_tag_version(model_dir, weights)}"
    try:
        return str(bentoml.models.get(tag).tag)
    except NotFound:
        pass
    with bentoml.models.create(
        tag, labels={"source": str(model_dir)}, metadata={"aigq_model_dir": str(model_dir), "aigq_version": version}
    ) as model:
        shutil.copytree(model_dir, model.path, dirs_exist_ok=True)
    return tag


def register_all() -> dict[str, str]:
    """The CTR model and the newest Direct model, into $BENTOML_HOME's model store. Each is
    loaded once first, so a missing or corrupt model stops `aigq serve bento` with its path
    before any server starts (not at the first request)."""

    ctr_dir, direct_dir = aigq_home() / "models" / "ctr", newest_direct_model()
    ctr_version = load_scorer(str(ctr_dir)).version
    load(direct_dir)
    return {
        "ctr": register("aigq-ctr", ctr_dir, "model.pt", ctr_version),
        "direct": register("aigq-direct", direct_dir, "config.json", model_version(direct_dir)),
    }
