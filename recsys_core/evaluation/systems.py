"""The systems compared by the offline evaluation, each producing top-K lists on the same split.

Every system learns from the training interactions only: features, the towers, the neighbor table,
the candidate lists, the popularity order and the ALS factors. Evaluation data sets are small
enough to score users against the whole catalogue in numpy blocks; the nightly pipeline does not
take these shortcuts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.candidates.ranking import new_arrivals, rank_candidates
from recsys_core.candidates.retrieval import CANDIDATES_SCHEMA, long_form, retrieve
from recsys_core.config import Config, ModelConfig, RetrievalConfig
from recsys_core.evaluation.protocol import K, top_k_unseen
from recsys_core.features import build as features
from recsys_core.features.names import feature_columns
from recsys_core.model.softmax_training import fit_softmax_towers, histories_of
from recsys_core.model.training import fit_towers
from recsys_core.model.training_examples import training_examples
from recsys_core.model.two_tower import TwoTowerModel

# the ALS baselines' settings other than the rank: Spark MLlib's defaults
ALS_MAX_ITER = 10
ALS_REG = 0.1
ALS_ALPHA = 1.0
# the retrieval sizes of the tradeoff experiment, small to large: (similar_per_item, top_genres,
# items_per_genre, country_items), the config's defaults (20, 3, 30, 50) among them
RETRIEVAL_SIZE_GRID = (
    (2, 1, 5, 5),
    (5, 2, 10, 10),
    (10, 3, 10, 20),
    (20, 3, 30, 50),
    (50, 5, 50, 100),
    (100, 8, 100, 200),
)


@dataclass(frozen=True)
class Catalogue:
    """The input tables as pandas frames (users, items) plus the training interactions of one split."""

    users: pd.DataFrame
    items: pd.DataFrame
    train: pd.DataFrame

    @property
    def item_ids(self) -> np.ndarray:
        return np.sort(self.items[C.ITEM_ID].to_numpy())


@dataclass
class Trained:
    """A model with the feature tables it was trained on and the embeddings of every user and item."""

    model: TwoTowerModel
    user_features: pd.DataFrame
    item_features: pd.DataFrame
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    seconds: float

    def score_block(self, user_ids: np.ndarray) -> np.ndarray:
        pos = pd.Index(self.user_features[C.USER_ID]).get_indexer(user_ids)
        return self.user_vectors[pos] @ self.item_vectors.T

    def recommend(self, users: np.ndarray, seen: pd.DataFrame, k: int = K) -> pd.DataFrame:
        """The towers alone: every catalogue item scored for each user, the top k unseen kept."""
        return top_k_unseen(
            users, self.item_features[C.ITEM_ID].to_numpy(), self.score_block, seen, k
        )

    def predict_ratings(self, pairs: pd.DataFrame) -> np.ndarray:
        u = pd.Index(self.user_features[C.USER_ID]).get_indexer(pairs[C.USER_ID])
        i = pd.Index(self.item_features[C.ITEM_ID]).get_indexer(pairs[C.ITEM_ID])
        scores = np.einsum("ij,ij->i", self.user_vectors[u], self.item_vectors[i])
        return self.model.output(scores)


def spark_frames(spark, cat: Catalogue) -> dict:
    return {
        C.USERS: spark.createDataFrame(cat.users),
        C.ITEMS: spark.createDataFrame(cat.items),
        C.INTERACTIONS: spark.createDataFrame(cat.train),
    }


def features_of(spark, cat: Catalogue) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user features, item features) from the training interactions, as build_features makes them."""
    t = spark_frames(spark, cat)
    genres = features.genre_vocabulary(t[C.ITEMS])
    # pd.DataFrame: pyspark's annotation of toPandas does not resolve without pandas type information
    uf: pd.DataFrame = features.user_features(
        t[C.USERS], t[C.INTERACTIONS], t[C.ITEMS], genres
    ).toPandas()
    itf: pd.DataFrame = features.item_features(t[C.ITEMS], t[C.INTERACTIONS], genres).toPandas()
    return (
        uf.sort_values(C.USER_ID).reset_index(drop=True),
        itf.sort_values(C.ITEM_ID).reset_index(drop=True),
    )


def train_towers(spark, cat: Catalogue, cfg: ModelConfig) -> Trained:
    """Features from the training interactions (as build_features does), then the towers, then embeddings."""
    start = time.perf_counter()
    uf, itf = features_of(spark, cat)
    if cfg.mode == "softmax":
        model = fit_softmax_towers(uf, itf, cat.train, cfg)
    else:
        model = fit_towers(*training_examples(cat.train, uf, itf, cfg), cfg)
    user_ids, item_ids = uf[C.USER_ID].to_numpy(), itf[C.ITEM_ID].to_numpy()
    return Trained(
        model,
        uf,
        itf,
        model.embed_users(
            uf[feature_columns(list(uf.columns), C.USER_ID)],
            user_ids,
            histories_of(model, cat.train, user_ids),
        ),
        model.embed_items(itf[feature_columns(list(itf.columns), C.ITEM_ID)], item_ids),
        time.perf_counter() - start,
    )


def popularity(cat: Catalogue, users: np.ndarray, k: int = K) -> pd.DataFrame:
    """Most interacted items first (ties: higher mean rating, then lower item_id), unseen only."""
    stats = cat.train.groupby(C.ITEM_ID)[C.RATING].agg(["size", "mean"]).reindex(cat.item_ids)
    order = stats.fillna({"size": 0, "mean": 0}).sort_values(
        ["size", "mean"], ascending=[False, False], kind="stable"
    )
    score = (
        pd.Series(-np.arange(len(order), dtype=np.float64), index=order.index)
        .reindex(cat.item_ids)
        .to_numpy()
    )
    return top_k_unseen(
        users,
        cat.item_ids,
        lambda ids: np.broadcast_to(score, (len(ids), len(score))),
        cat.train,
        k,
    )


@dataclass
class AlsFactors:
    user_ids: np.ndarray
    user_factors: np.ndarray
    item_ids: np.ndarray
    item_factors: np.ndarray
    fallback: float  # the training mean, predicted for pairs ALS has no factors for

    def score_block(self, user_ids: np.ndarray) -> np.ndarray:
        pos = pd.Index(self.user_ids).get_indexer(user_ids)
        scores = np.zeros((len(user_ids), len(self.item_ids)))
        known = pos >= 0
        scores[known] = self.user_factors[pos[known]] @ self.item_factors.T
        return scores

    def recommend(self, users: np.ndarray, seen: pd.DataFrame, k: int = K) -> pd.DataFrame:
        return top_k_unseen(users, self.item_ids, self.score_block, seen, k)

    def predict_ratings(self, pairs: pd.DataFrame) -> np.ndarray:
        u = pd.Index(self.user_ids).get_indexer(pairs[C.USER_ID])
        i = pd.Index(self.item_ids).get_indexer(pairs[C.ITEM_ID])
        known = (u >= 0) & (i >= 0)
        out = np.full(len(pairs), self.fallback)
        out[known] = np.einsum("ij,ij->i", self.user_factors[u[known]], self.item_factors[i[known]])
        return out


def als(
    spark,
    cat: Catalogue,
    rank: int,
    implicit: bool,
    seed: int,
    max_iter: int = ALS_MAX_ITER,
    reg: float = ALS_REG,
    alpha: float = ALS_ALPHA,
) -> AlsFactors:
    """Spark MLlib ALS on the training interactions: explicit on ratings, or implicit with the ratings
    as confidence weights (1 + alpha * rating)."""
    from pyspark.ml.recommendation import ALS

    frame = spark.createDataFrame(cat.train[[C.USER_ID, C.ITEM_ID, C.RATING]])
    fitted = ALS(
        rank=rank,
        maxIter=max_iter,
        regParam=reg,
        implicitPrefs=implicit,
        alpha=alpha,
        seed=seed,
        userCol=C.USER_ID,
        itemCol=C.ITEM_ID,
        ratingCol=C.RATING,
        coldStartStrategy="drop",
    ).fit(frame)
    # pd.DataFrame: pyspark's annotation of toPandas does not resolve without pandas type information
    users: pd.DataFrame = fitted.userFactors.toPandas()
    users = users.sort_values("id")
    items: pd.DataFrame = fitted.itemFactors.toPandas()
    # items without training interactions have no factors: give them zero vectors so they rank last
    item_ids = cat.item_ids
    factors = np.zeros((len(item_ids), rank))
    pos = pd.Index(item_ids).get_indexer(items["id"])
    factors[pos[pos >= 0]] = np.stack(items["features"].to_numpy())[pos >= 0]
    return AlsFactors(
        users["id"].to_numpy(),
        np.stack(users["features"].to_numpy()),
        item_ids,
        factors,
        float(cat.train[C.RATING].mean()),
    )


@dataclass
class PipelineResult:
    recs: pd.DataFrame
    candidates: pd.DataFrame
    retrieval_seconds: float
    ranking_seconds: float


def neighbors(spark, trained: Trained, k: int):
    """The item-similarity step on the trained item embeddings, cached for reuse across retrieval sizes."""
    from recsys_core.candidates.similarity import neighbors_dataframe

    df = neighbors_dataframe(
        spark, trained.item_features[C.ITEM_ID].to_numpy(), trained.item_vectors, k
    )
    return spark.createDataFrame(df.toPandas())


def pipeline(
    spark,
    cat: Catalogue,
    trained: Trained,
    neighbor_table,
    cfg: RetrievalConfig,
    users: np.ndarray,
    k: int = K,
    new_slots: int = 0,
) -> PipelineResult:
    """Retrieval then ranking of the candidates by v_u . v_m, top k: both in Spark, as the nightly steps
    (`new_slots`: ranking.new_slots)."""
    start = time.perf_counter()
    t = spark_frames(spark, cat)
    wanted = t[C.USERS].where(t[C.USERS][C.USER_ID].isin([int(u) for u in users]))
    per_user = retrieve(wanted, t[C.ITEMS], t[C.INTERACTIONS], neighbor_table, cfg, k).toPandas()
    retrieval_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ranked = rank_candidates(
        spark.createDataFrame(per_user, CANDIDATES_SCHEMA),
        trained.user_features[C.USER_ID].to_numpy(),
        trained.user_vectors,
        trained.item_features[C.ITEM_ID].to_numpy(),
        trained.item_vectors,
        k,
        new_arrivals(trained.item_features),
        cfg.new_items,
        min(new_slots, k),
    ).toPandas()
    candidates = long_form(per_user)
    return PipelineResult(ranked, candidates, retrieval_seconds, time.perf_counter() - start)


def candidate_recall(candidates: pd.DataFrame, relevant: pd.DataFrame) -> float:
    """Share of relevant (user, item) test pairs that retrieval put among the user's candidates."""
    hit = relevant.merge(candidates[[C.USER_ID, C.ITEM_ID]], on=[C.USER_ID, C.ITEM_ID])
    return float(len(hit) / len(relevant)) if len(relevant) else 0.0


def retrieval_sizes(cfg: Config) -> list[RetrievalConfig]:
    """The sweep of the tradeoff experiment, small to large; recent_items stays as configured."""
    return [
        RetrievalConfig(
            cfg.retrieval.recent_items, similar, genres, per_genre, country, cfg.retrieval.new_items
        )
        for similar, genres, per_genre, country in RETRIEVAL_SIZE_GRID
    ]
