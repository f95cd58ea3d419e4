"""`recsys evaluate`: every system on one split, the cold-start figure and the retrieval-size tradeoff."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.config import MODEL_MODES, Config
from recsys_core.evaluation import item_baselines
from recsys_core.evaluation import systems as offline
from recsys_core.evaluation.protocol import (
    RELEVANT_RATING,
    TEST_SHARE,
    K,
    Split,
    ranking_metrics,
    rating_errors,
    temporal_split,
)
from recsys_core.evaluation.warm_start import simulated_week
from recsys_core.io.inputs import read_input
from recsys_core.model.tuning import tune

log = logging.getLogger(__name__)
HOLDOUTS = ("test", "validation")
COLD_ITEM_SHARE = 0.1
# ranks of the ALS baselines of docs/model.md: explicit at Spark MLlib's default, implicit at a
# larger one
ALS_EXPLICIT_RANK = 10
ALS_IMPLICIT_RANK = 64
TIE_CREDIT = 0.5  # a tied pair counts half a win, as in the Mann-Whitney statistic the AUC is
TRADEOFF_FIGSIZE = (12, 4.5)  # inches: the two panels side by side
TRADEOFF_DPI = 110


def load_tables(data_dir: str | Path) -> dict[str, pd.DataFrame]:
    return {t: read_input(data_dir, t).to_pandas() for t in C.INPUT_TABLES}


def make_split(interactions: pd.DataFrame, holdout: str) -> Split:
    """The protocol's split; "validation" applies the same rule again inside the training part, so
    choices can be made without looking at the test set."""
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    split = temporal_split(interactions)
    return temporal_split(split.train) if holdout == "validation" else split


def _entry(recs: pd.DataFrame, split: Split, n_items: int, seconds: float) -> dict:
    return {**ranking_metrics(recs, split.relevant, n_items), "seconds": round(seconds, 2)}


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _towers_and_pipeline(
    spark, cat, cfg: Config, model_cfg, split: Split, known_test: pd.DataFrame
) -> tuple[dict, dict, dict]:
    """(pipeline entry, towers entry, context) of one training of the towers with `model_cfg`."""
    users, n_items = split.evaluated_users, len(cat.item_ids)
    trained = offline.train_towers(spark, cat, model_cfg)
    table = offline.neighbors(spark, trained, max(cfg.similarity.k, cfg.retrieval.similar_per_item))
    run = offline.pipeline(spark, cat, trained, table, cfg.retrieval, users, *published(cfg))
    pipeline = {
        **_entry(
            run.recs, split, n_items, trained.seconds + run.retrieval_seconds + run.ranking_seconds
        ),
        "candidates_per_user": round(
            len(run.candidates) / max(1, run.candidates[C.USER_ID].nunique()), 1
        ),
        "candidate_recall": offline.candidate_recall(run.candidates, split.relevant),
    }
    recs, seconds = _timed(lambda: trained.recommend(users, split.train))
    towers = _entry(recs, split, n_items, trained.seconds + seconds)
    if model_cfg.mode == "regression":
        err = rating_errors(trained.predict_ratings(known_test), known_test[C.RATING].to_numpy())
        pipeline.update(err)
        towers.update(err)
    return pipeline, towers, {"catalogue": cat, "trained": trained, "neighbors": table}


def published(cfg: Config) -> tuple[int, int]:
    """(list length, places kept for new arrivals) of the pipeline's lists, as the nightly publishes
    them: ranking.top_n items (at least K, the metrics' cut) with ranking.new_slots at the end for
    new arrivals. The metrics read the first K; the cold-start section reads the whole list."""
    length = max(K, cfg.ranking.top_n)
    return length, min(cfg.ranking.new_slots, length)


def over_seeds(entries: list[dict]) -> dict:
    """One system's figures over several training seeds: the mean of each, its sample standard
    deviation under "std", and every seed's own entry under "per_seed"."""
    if len(entries) == 1:
        return entries[0]
    numeric = [
        k for k, v in entries[0].items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    mean = {k: float(np.mean([e[k] for e in entries])) for k in numeric}
    spread = {k: float(np.std([e[k] for e in entries], ddof=1)) for k in numeric}
    return {**mean, "std": spread, "seeds": len(entries), "per_seed": entries}


def tuned(spark, tables: dict, split: Split, cfg: Config) -> tuple[Config, dict]:
    """The softmax towers' settings searched on the validation split inside `split.train` (features
    from that split's training part too): (the config with the winner, the search's record)."""
    inner = temporal_split(split.train)
    users, items = offline.features_of(
        spark, offline.Catalogue(tables[C.USERS], tables[C.ITEMS], inner.train)
    )
    model_cfg, record = tune(users, items, split.train, cfg.model)
    return dataclasses.replace(cfg, model=model_cfg), record


def compare_systems(
    spark, tables: dict, split: Split, cfg: Config, baselines: bool = True, seeds: int = 1
) -> tuple[dict, dict]:
    """Metrics of the pipeline, the towers alone, the towers with SEED.md's other model functions and,
    with `baselines`, popularity, both ALS variants, EASE and item-kNN on `split`. The pipeline and
    the towers are trained `seeds` times (model.seed, model.seed + 1, ...) and reported as the mean
    over those trainings, with its spread."""
    cat = offline.Catalogue(tables[C.USERS], tables[C.ITEMS], split.train)
    users, n_items = split.evaluated_users, len(cat.item_ids)
    # rating errors over every test pair whose user and item are known (RMSE/MAE of the protocol)
    known_test = split.test[
        split.test[C.USER_ID].isin(cat.users[C.USER_ID]) & split.test[C.ITEM_ID].isin(cat.item_ids)
    ]
    runs = [
        _towers_and_pipeline(
            spark,
            cat,
            cfg,
            dataclasses.replace(cfg.model, seed=cfg.model.seed + i),
            split,
            known_test,
        )
        for i in range(seeds)
    ]
    systems = {
        "pipeline": over_seeds([r[0] for r in runs]),
        "towers": over_seeds([r[1] for r in runs]),
    }
    context = runs[0][2]  # the cold-start and tradeoff experiments use the configured seed's model
    for mode in MODEL_MODES:
        if mode == cfg.model.mode:
            continue
        # the other model functions on the same split: their ranking, and for regression the rating
        # errors (RMSE/MAE) that the other functions cannot give
        other = offline.train_towers(spark, cat, dataclasses.replace(cfg.model, mode=mode))
        recs, seconds = _timed(lambda m=other: m.recommend(users, split.train))
        entry = _entry(recs, split, n_items, other.seconds + seconds)
        if mode == "regression":
            entry.update(
                rating_errors(other.predict_ratings(known_test), known_test[C.RATING].to_numpy())
            )
        systems[f"towers_{mode}"] = entry
    if baselines:
        recs, seconds = _timed(lambda: offline.popularity(cat, users))
        systems["popularity"] = _entry(recs, split, n_items, seconds)
        for name, rank, implicit in (
            ("als_explicit", ALS_EXPLICIT_RANK, False),
            ("als_implicit", ALS_IMPLICIT_RANK, True),
        ):
            factors, seconds = _timed(
                lambda r=rank, i=implicit: offline.als(spark, cat, r, i, cfg.model.seed)
            )
            recs, more = _timed(lambda f=factors: f.recommend(users, split.train))
            entry = _entry(recs, split, n_items, seconds + more)
            if not implicit:
                entry.update(
                    rating_errors(
                        factors.predict_ratings(known_test), known_test[C.RATING].to_numpy()
                    )
                )
            systems[name] = {"rank": rank, **entry}
        # the item-to-item baselines a practitioner tries first, each with its setting chosen on the
        # validation split inside this split's training rows
        for name, fit in (("ease", item_baselines.ease), ("item_knn", item_baselines.item_knn)):
            model, seconds = _timed(lambda f=fit: f(split.train, cat.item_ids))
            recs, more = _timed(lambda m=model: m.recommend(users, split.train))
            systems[name] = {**model.chosen, **_entry(recs, split, n_items, seconds + more)}
    return systems, context


def cold_start(
    spark, tables: dict, split: Split, cfg: Config, share: float = COLD_ITEM_SHARE
) -> dict:
    """Hold a seeded `share` of the interacted items out of training entirely (their interactions and
    their rating statistics), retrain, and measure how the towers and the pipeline treat them."""
    rng = np.random.default_rng(cfg.model.seed)
    interacted = np.sort(split.train[C.ITEM_ID].unique())
    cold = rng.choice(interacted, size=max(1, int(round(share * len(interacted)))), replace=False)
    train = split.train[~split.train[C.ITEM_ID].isin(cold)]
    cold_split = Split(train, split.test)
    cat = offline.Catalogue(tables[C.USERS], tables[C.ITEMS], train)
    users = cold_split.evaluated_users
    trained = offline.train_towers(spark, cat, cfg.model)
    table = offline.neighbors(spark, trained, max(cfg.similarity.k, cfg.retrieval.similar_per_item))
    relevant_cold = cold_split.relevant[cold_split.relevant[C.ITEM_ID].isin(cold)]
    out: dict[str, Any] = {
        "cold_items": int(len(cold)),
        "relevant_cold_pairs": int(len(relevant_cold)),
    }
    length, new_slots = published(cfg)
    pipeline_recs = offline.pipeline(
        spark, cat, trained, table, cfg.retrieval, users, length, new_slots
    ).recs
    for name, recs, n in (
        ("towers", trained.recommend(users, train), K),
        ("pipeline", pipeline_recs, length),
        ("content_blind", content_blind(pipeline_recs, cold, rng), length),
    ):
        top = recs[recs[C.RANK] <= n]
        is_cold = top[C.ITEM_ID].isin(cold)
        hits = relevant_cold.merge(top[[C.USER_ID, C.ITEM_ID]], on=[C.USER_ID, C.ITEM_ID])
        out[name] = {
            "list_length": n,
            "share_of_slots": float(is_cold.mean()) if len(top) else 0.0,
            "users_with_one": float(top[is_cold][C.USER_ID].nunique() / max(1, len(users))),
            "distinct_cold_items_shown": int(top[is_cold][C.ITEM_ID].nunique()),
            "cold_recall": float(len(hits) / len(relevant_cold)) if len(relevant_cold) else 0.0,
        }
    out["towers"]["cold_auc"] = cold_auc(trained, relevant_cold, cold, train)
    out["new_arrivals_shelf"] = shelf_recall(trained, users, relevant_cold, cold, rng)
    return out


def shelf_recall(
    trained: offline.Trained,
    users: np.ndarray,
    relevant_cold: pd.DataFrame,
    cold: np.ndarray,
    rng: np.random.Generator,
) -> dict:
    """A shelf of K new arrivals per user, the cold items only: cold recall@10 when the towers rank
    them (what the "new" source does) against K of them drawn at random (content-blind)."""
    item_pos = pd.Index(trained.item_features[C.ITEM_ID]).get_indexer(cold)
    scores = trained.score_block(users)[:, item_pos]
    k = min(K, len(cold))
    by_towers = cold[np.argsort(-scores, axis=1, kind="stable")[:, :k]]
    at_random = np.stack([rng.choice(cold, size=k, replace=False) for _ in users])

    def recall(shelves: np.ndarray) -> float:
        shown = pd.DataFrame({C.USER_ID: np.repeat(users, k), C.ITEM_ID: shelves.ravel()})
        hits = relevant_cold.merge(shown, on=[C.USER_ID, C.ITEM_ID])
        return float(len(hits) / len(relevant_cold)) if len(relevant_cold) else 0.0

    return {"towers_cold_recall@10": recall(by_towers), "random_cold_recall@10": recall(at_random)}


def content_blind(recs: pd.DataFrame, cold: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The baseline of the cold-start section: every cold item the pipeline shows a user is swapped for
    a cold item drawn at random (without repeats within the user's list), so the same slots go to new
    items but their content plays no part."""
    out = recs.copy()
    slots = out[C.ITEM_ID].isin(cold).to_numpy()
    for user in out.loc[slots, C.USER_ID].unique():
        mine = (out[C.USER_ID] == user).to_numpy() & slots
        others = np.setdiff1d(
            cold, out.loc[(out[C.USER_ID] == user).to_numpy() & ~slots, C.ITEM_ID]
        )
        out.loc[mine, C.ITEM_ID] = rng.choice(others, size=int(mine.sum()), replace=False)
    return out


def cold_auc(
    trained: offline.Trained, relevant_cold: pd.DataFrame, cold: np.ndarray, seen: pd.DataFrame
) -> float:
    """Among the never-trained-on items only, the chance that the towers score an item the user rated
    >= 4 in the test period above one they did not rate at all (0.5 = no better than chance): what
    the content features alone say about items nobody interacted with."""
    item_pos = pd.Index(trained.item_features[C.ITEM_ID]).get_indexer(cold)
    aucs = []
    for user, group in relevant_cold.groupby(C.USER_ID):
        scores = trained.score_block(np.array([user]))[0, item_pos]
        is_rel = np.isin(cold, group[C.ITEM_ID].to_numpy())
        other = ~is_rel & ~np.isin(cold, seen[seen[C.USER_ID] == user][C.ITEM_ID].to_numpy())
        if is_rel.any() and other.any():
            pos, neg = scores[is_rel][:, None], scores[other][None, :]
            aucs.append(float(np.mean((pos > neg) + TIE_CREDIT * (pos == neg))))
    return float(np.mean(aucs)) if aucs else float("nan")


def tradeoff(spark, split: Split, cfg: Config, context: dict) -> list[dict]:
    """Retrieval sizes small to large, all ranked by the same model on the same split."""
    cat, trained = context["catalogue"], context["trained"]
    sizes = offline.retrieval_sizes(cfg)
    table = offline.neighbors(spark, trained, max(s.similar_per_item for s in sizes))
    rows = []
    for size in sizes:
        run = offline.pipeline(
            spark, cat, trained, table, size, split.evaluated_users, *published(cfg)
        )
        metrics = ranking_metrics(run.recs, split.relevant, len(cat.item_ids))
        row = {
            **dataclasses.asdict(size),
            "candidates_per_user": round(
                len(run.candidates) / max(1, run.candidates[C.USER_ID].nunique()), 1
            ),
            "candidate_recall": offline.candidate_recall(run.candidates, split.relevant),
            f"recall@{K}": metrics[f"recall@{K}"],
            f"ndcg@{K}": metrics[f"ndcg@{K}"],
            "retrieval_seconds": round(run.retrieval_seconds, 2),
            "ranking_seconds": round(run.ranking_seconds, 3),
        }
        log.info("tradeoff %s", row)
        rows.append(row)
    return rows


def evaluate(
    spark,
    data_dir: str | Path,
    cfg: Config,
    holdout: str = "test",
    baselines: bool = True,
    sweep: bool = True,
    cold: bool = True,
    seeds: int = 1,
    search: bool = True,
    warm_start: bool = True,
) -> dict:
    tables = load_tables(data_dir)
    split = make_split(tables[C.INTERACTIONS], holdout)
    tuning = None
    if search and cfg.model.mode == "softmax":
        cfg, tuning = tuned(spark, tables, split, cfg)
    systems, context = compare_systems(spark, tables, split, cfg, baselines, seeds)
    report: dict[str, Any] = {
        "protocol": {
            "holdout": holdout,
            "test_share": TEST_SHARE,
            "relevant_rating": RELEVANT_RATING,
            "k": K,
            "split": "per user by (timestamp, item_id), last share rounded half up, at least one",
        },
        "data": {
            "dir": str(data_dir),
            "users": int(len(tables[C.USERS])),
            "items": int(len(tables[C.ITEMS])),
            "interactions": int(len(tables[C.INTERACTIONS])),
            "train_rows": int(len(split.train)),
            "test_rows": int(len(split.test)),
            "relevant_rows": int(len(split.relevant)),
            "evaluated_users": int(len(split.evaluated_users)),
        },
        "config": cfg.to_dict(),
        "systems": systems,
    }
    if tuning:
        report["tuning"] = tuning
    if cold:
        report["cold_start"] = cold_start(spark, tables, split, cfg)
    if sweep:
        report["tradeoff"] = tradeoff(spark, split, cfg, context)
    if warm_start and cfg.model.mode == "softmax":
        report["warm_start"] = warm_start_week(spark, tables, split, cfg.model)
    return report


def warm_start_week(spark, tables: dict, split: Split, model_cfg) -> dict:
    """A simulated week of warm-started nights against a full retrain, on the split's training
    features (recsys_core/evaluation/warm_start.py)."""
    cat = offline.Catalogue(tables[C.USERS], tables[C.ITEMS], split.train)
    return simulated_week(*offline.features_of(spark, cat), split, model_cfg)


def plot_tradeoff(rows: list[dict], path: str | Path) -> Path:
    """Relevance after ranking (NDCG@10, Recall@10) and candidate recall against candidates per user,
    and the seconds retrieval and ranking took, one point per retrieval size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    x = [r["candidates_per_user"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=TRADEOFF_FIGSIZE)
    for key, marker in ((f"ndcg@{K}", "o"), (f"recall@{K}", "s")):
        left.plot(x, [r[key] for r in rows], marker=marker, label=f"{key} after ranking")
    left.set_ylabel("NDCG@10, Recall@10")
    share = left.twinx()
    share.plot(
        x,
        [r["candidate_recall"] for r in rows],
        marker="^",
        color="tab:green",
        label="candidate recall",
    )
    share.set_ylabel("share of relevant test items among the candidates")
    for r in rows:
        left.annotate(
            f"{r['similar_per_item']}/{r['top_genres']}x{r['items_per_genre']}/{r['country_items']}",
            (r["candidates_per_user"], r[f"ndcg@{K}"]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
        )
    right.plot(x, [r["retrieval_seconds"] for r in rows], marker="o", label="retrieval (Spark)")
    right.plot(x, [r["ranking_seconds"] for r in rows], marker="s", label="ranking")
    right.set_ylabel("seconds")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("candidates per user (log scale)")
    handles = left.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    left.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize=8)
    left.set_title(
        "Relevance against retrieval size (similar/genres x per genre/country)", fontsize=9
    )
    right.legend(fontsize=8)
    right.set_title("Time against retrieval size", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=TRADEOFF_DPI)
    plt.close(fig)
    return path
