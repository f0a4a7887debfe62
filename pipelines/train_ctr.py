"""`aigq train ctr`: the CTR ranker on the point-in-time impression frame.

Time-based split (the last `test_days` days are the test set). Reports AUC and log loss beside
a logistic regression on the same features and a per-query historical CTR baseline, and the
model's mean predicted click probability at each position (its learnt position bias).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from core.config import aigq_home, git_revision, option
from core.errors import AigqError
from core.feature_store import data_dir
from models import ctr


@dataclass
class TrainCTRConfig:
    test_days: float = option(5.0, "the last N days of impressions are the test set")
    epochs: int = option(4, "passes over the training rows")
    batch_size: int = option(1024, "rows per optimiser step")
    lr: float = option(2e-3, "Adam learning rate")
    weight_decay: float = option(1e-6, "Adam weight decay")
    position_lr_scale: float = option(10.0, "learning-rate multiplier of the position logits")
    seed: int = option(0, "torch and shuffling seed")
    threads: int = option(2, "torch CPU threads")
    output_dir: str = option("", "model directory (default $AIGQ_HOME/models/ctr)")


def model_dir(cfg: TrainCTRConfig | None = None) -> Path:
    return Path(cfg.output_dir) if cfg and cfg.output_dir else aigq_home() / "models" / "ctr"


def load_frame() -> pd.DataFrame:
    path = aigq_home() / "frames" / "ctr.parquet"
    if not path.exists():
        raise AigqError(f"{path}: no CTR training frame; run `aigq features frames` (after apply/materialize)")
    return pd.read_parquet(path)


def time_split(frame: pd.DataFrame, test_days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame.empty:
        raise AigqError(
            f"{aigq_home() / 'frames' / 'ctr.parquet'}: no CTR samples: the log has no HintQ impressions and no "
            "session after its first day to learn next searches from (ingest a longer log)"
        )
    cut = frame["event_timestamp"].max() - pd.Timedelta(days=test_days)
    train, test = frame[frame["event_timestamp"] < cut], frame[frame["event_timestamp"] >= cut]
    if len(train) == 0 or len(test) == 0 or train["clicked"].nunique() < 2:
        raise AigqError(
            f"time split at {cut} leaves {len(train)} train / {len(test)} test rows with both "
            f"labels needed ({len(frame)} samples over {frame['event_timestamp'].min()} .. "
            f"{frame['event_timestamp'].max()}); lower test_days (now {test_days}) or give a longer log"
        )
    return train, test


def _columns(df: pd.DataFrame) -> dict[str, list]:
    return {c: df[c].tolist() for c in df.columns}


def auc_and_logloss(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(p, 1e-6, 1 - 1e-6)
    return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, p, labels=[0, 1]))}


def sparse_design(batch: dict[str, np.ndarray], n_categories: int, buckets: int):
    """The same features for a linear model: dense, one-hot position and category, token hashes."""
    import scipy.sparse as sp

    n = len(batch["dense"])
    rows = np.arange(n)
    onehot = lambda idx, width: sp.csr_matrix((np.ones(n), (rows, idx)), shape=(n, width))  # noqa: E731
    tok_rows = np.repeat(rows, np.diff(np.append(batch["tok_off"], len(batch["tok_ids"]))))
    tokens = sp.csr_matrix((np.ones(len(tok_rows)), (tok_rows, batch["tok_ids"])), shape=(n, buckets))
    return sp.hstack(
        [
            sp.csr_matrix(batch["dense"]),
            onehot(batch["position"], ctr.MAX_POSITION),
            onehot(batch["qcat"], n_categories + 1),
            tokens,
        ]
    ).tocsr()


def train_model(train_batch, y, cfg: TrainCTRConfig, ctr_cfg: ctr.CTRConfig, vocab: ctr.Vocab):
    import torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = ctr.build_model(ctr_cfg, vocab)
    # the position logits are 16 numbers shared by every row; a larger step lets them keep pace
    # with the MLP, which would otherwise absorb position effects into item features
    position = list(model.position_logit.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("position_logit")]
    opt = torch.optim.Adam(
        [{"params": rest}, {"params": position, "lr": cfg.lr * cfg.position_lr_scale}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(cfg.seed)
    losses = []
    steps = cfg.epochs * int(np.ceil(len(y) / cfg.batch_size))
    with tqdm(total=steps, desc="train ctr", unit="step") as bar:
        for _ in range(cfg.epochs):
            order = rng.permutation(len(y))
            for i in range(0, len(y), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                batch = ctr.to_tensors(ctr.slice_batch(train_batch, idx))
                loss = loss_fn(model(batch), torch.from_numpy(y[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    model.eval()
    return model, losses


def predict(model, batch: dict[str, np.ndarray], chunk: int = 8192) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(batch["dense"]), chunk):
            idx = np.arange(i, min(i + chunk, len(batch["dense"])))
            out.append(torch.sigmoid(model(ctr.to_tensors(ctr.slice_batch(batch, idx)))).numpy())
    return np.concatenate(out).astype(np.float64)


def main(cfg: TrainCTRConfig, frame: pd.DataFrame | None = None) -> dict:
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    frame = load_frame() if frame is None else frame
    train, test = time_split(frame, cfg.test_days)
    ctr_cfg = ctr.CTRConfig()
    vocab = ctr.Vocab.fit(_columns(train))
    train_batch = ctr.featurize(_columns(train), vocab, ctr_cfg)
    test_batch = ctr.featurize(_columns(test), vocab, ctr_cfg)
    y_train = train["clicked"].to_numpy().astype(np.float32)
    y_test = test["clicked"].to_numpy().astype(np.float32)

    model, losses = train_model(train_batch, y_train, cfg, ctr_cfg, vocab)
    p_model = predict(model, test_batch)

    logreg = LogisticRegression(max_iter=300, C=1.0, solver="liblinear")
    logreg.fit(sparse_design(train_batch, len(vocab.categories), ctr_cfg.hash_buckets), y_train)
    p_lr = logreg.predict_proba(sparse_design(test_batch, len(vocab.categories), ctr_cfg.hash_buckets))[:, 1]

    prior = float(y_train.mean())
    p_query = test["q_ctr_30d"].astype(float).fillna(prior).to_numpy()

    curve = {}
    for pos in range(8):  # the same test rows, every one scored at `pos`
        moved = dict(test_batch, position=np.full(len(y_test), pos, dtype=np.int64))
        curve[pos] = float(predict(model, moved).mean())
    observed = test.groupby("position")["clicked"].mean()
    metrics = {
        "samples": samples_source(),
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_from": str(test["event_timestamp"].min()),
        "base_rate_test": float(y_test.mean()),
        "model": auc_and_logloss(y_test, p_model),
        "logistic_regression": auc_and_logloss(y_test, p_lr),
        "per_query_ctr": auc_and_logloss(y_test, p_query),
        "position_curve": curve,
        "observed_ctr_by_position": {int(k): float(v) for k, v in observed.items()},
        "first_loss": float(np.mean(losses[:20])),
        "last_loss": float(np.mean(losses[-20:])),
        "train_seconds": time.perf_counter() - started,
    }
    out = model_dir(cfg)
    card = model_card(cfg, metrics, frame)
    ctr.save(out, model, ctr_cfg, vocab, metrics, card)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    return metrics


def samples_source() -> str:
    """What the ranker learnt from: the log's HintQ impressions, or (a search log from a shop
    without HintQ yet) next searches (`training_frames.next_search_impressions`)."""
    path = data_dir() / "hintq_impressions.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == 0:
        return "next searches (the log has no HintQ impressions)"
    return "HintQ impressions"


def model_card(cfg: TrainCTRConfig, m: dict, frame: pd.DataFrame) -> str:
    names = {
        "model": "this model",
        "logistic_regression": "logistic regression (same features)",
        "per_query_ctr": "per-query historical CTR",
    }
    rows = "\n".join(f"| {name} | {m[key]['auc']:.4f} | {m[key]['logloss']:.4f} |" for key, name in names.items())
    return f"""# CTR ranker

- Samples: {m["samples"]}.
- Feature service: `{ctr.FEATURE_SERVICE}` (point-in-time over the impression log), plus query text
  (hashed word uni/bigrams) and position (additive logit).
- Data window: {frame["event_timestamp"].min()} .. {frame["event_timestamp"].max()};
  test from {m["test_from"]} ({m["test_rows"]} rows), train {m["train_rows"]} rows.
- Git revision: {git_revision()}. Config: `{json.dumps(asdict(cfg))}`

| model | AUC | log loss |
|---|---|---|
{rows}

Mean predicted click probability of the test rows moved to each position:
{", ".join(f"{k}: {v:.4f}" for k, v in m["position_curve"].items())}
"""
