"""recsys_core.model.tuning: the variants it tries, how a variant is applied, how the search picks its
winner (with validation_ndcg replaced by scores chosen from the config, so no training runs), and one
real validation_ndcg on tiny synthetic data."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.model import tuning

BASE = ModelConfig()  # epochs 3, half-life 10, embedding size 32, temperature 0.1, seed 42
# the setting a variant moves, read back from a ModelConfig
SETTINGS = {
    "epochs": lambda c: c.epochs,
    "history_half_life": lambda c: c.history_half_life,
    "embedding_size": lambda c: c.user_layers[-1],
    "initial_temperature": lambda c: c.initial_temperature,
    "logq_weight": lambda c: c.logq_weight,
}


# --- variants --------------------------------------------------------------------------------------


def test_variants_of_the_default_move_each_setting_by_its_factors():
    assert tuning.variants(BASE) == {
        "epochs=1": {"epochs": 1},  # x1/2, at least 1
        "epochs=6": {"epochs": 6},  # x2
        "history_half_life=3.333": {"history_half_life": 10.0 * (1 / 3)},  # x1/3
        "history_half_life=30": {"history_half_life": 30.0},  # x3
        "embedding_size=64": {"embedding_size": 64},  # x2
        "initial_temperature=0.05": {"initial_temperature": 0.05},  # x1/2
        "initial_temperature=0.2": {"initial_temperature": 0.2},  # x2
        "logq_weight=1.5": {"logq_weight": 1.5},  # x1.5
        "logq_weight=2": {"logq_weight": 2.0},  # x2
    }


def test_variants_are_relative_to_the_configured_model():
    cfg = ModelConfig(
        epochs=10,
        history_half_life=3.0,
        user_layers=(64, 16),
        item_layers=(16,),
        initial_temperature=0.5,
        logq_weight=0.5,
    )
    assert tuning.variants(cfg) == {
        "epochs=5": {"epochs": 5},
        "epochs=20": {"epochs": 20},
        "history_half_life=1": {"history_half_life": 1.0},
        "history_half_life=9": {"history_half_life": 9.0},
        "embedding_size=32": {"embedding_size": 32},
        "initial_temperature=0.25": {"initial_temperature": 0.25},
        "initial_temperature=1": {"initial_temperature": 1.0},
        "logq_weight=0.75": {"logq_weight": 0.75},
        "logq_weight=1": {"logq_weight": 1.0},
    }


@pytest.mark.parametrize(
    "cfg",
    [
        BASE,
        ModelConfig(epochs=1),  # half of 1 is 1 again: only x2 is left
        ModelConfig(epochs=2),
        ModelConfig(epochs=7, history_half_life=1.0, initial_temperature=1.0),
        ModelConfig(user_layers=(8,), item_layers=(4, 8), history_half_life=0.5),
        ModelConfig(logq_weight=0.0),  # nothing to scale: no logq_weight move
    ],
)
def test_variants_never_repeat_the_configured_value_and_change_one_setting_each(cfg):
    moves = tuning.variants(cfg)
    for name, changes in moves.items():
        [(setting, value)] = changes.items()
        assert name.split("=")[0] == setting
        assert value != SETTINGS[setting](cfg), name
        assert SETTINGS[setting](tuning.apply(cfg, changes)) == value
    if cfg.epochs == 1:
        assert [c["epochs"] for c in moves.values() if "epochs" in c] == [2]
    if cfg.logq_weight == 0:
        assert not [c for c in moves.values() if "logq_weight" in c]


@pytest.mark.parametrize(
    "cfg", [ModelConfig(history_half_life=0.001), ModelConfig(initial_temperature=0.0001)]
)
def test_variants_of_very_small_settings_are_valid_and_differ_from_the_configured_value(cfg):
    for changes in tuning.variants(cfg).values():
        [(setting, value)] = changes.items()
        assert value != SETTINGS[setting](cfg)
        tuning.apply(cfg, changes)  # a valid ModelConfig


# --- apply -----------------------------------------------------------------------------------------


def test_apply_with_an_embedding_size_sets_the_last_width_of_both_towers_only():
    cfg = ModelConfig(user_layers=(256, 128, 32), item_layers=(64, 32), epochs=5)
    changes = {"embedding_size": 48, "epochs": 2}
    out = tuning.apply(cfg, changes)
    assert out.user_layers == (256, 128, 48) and out.item_layers == (64, 48)
    assert out.epochs == 2
    assert out == dataclasses.replace(
        cfg, user_layers=(256, 128, 48), item_layers=(64, 48), epochs=2
    )
    assert changes == {"embedding_size": 48, "epochs": 2}  # the variant itself is not consumed
    assert cfg.user_layers[-1] == 32  # nor the configured model changed


def test_apply_of_no_changes_is_the_configured_model_and_of_a_field_is_that_field():
    assert tuning.apply(BASE, {}) == BASE
    assert tuning.apply(BASE, {"history_half_life": 30.0}) == dataclasses.replace(
        BASE, history_half_life=30.0
    )


# --- tune, with validation_ndcg replaced -----------------------------------------------------------

USERS, ITEMS, INTERACTIONS = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()


def fake_validation(monkeypatch, gains: dict, base: float = 0.3, per_seed: dict | None = None):
    """validation_ndcg replaced: NDCG@10 = base x the product of (1 + gain) over the settings of the
    config that differ from BASE and are in `gains`, keyed (setting, value); `per_seed` multiplies it
    by a factor per seed. Returns the calls made: (the config, its inputs)."""
    calls = []

    def validation_ndcg(users, items, interactions, cfg):
        calls.append((cfg, (users, items, interactions)))
        score = base
        for setting, read in SETTINGS.items():
            if read(cfg) != read(BASE):
                score *= 1 + gains.get((setting, read(cfg)), 0.0)
        score *= (per_seed or {}).get(cfg.seed, 1.0)
        return {"ndcg@10": score, "users": 7}

    monkeypatch.setattr(tuning, "validation_ndcg", validation_ndcg)
    return calls


def test_the_configured_model_is_kept_when_no_variant_beats_it_by_more_than_the_margin(
    monkeypatch,
):
    assert tuning.MIN_GAIN == 0.02
    # every variant is better, but by less than MIN_GAIN; one of them is worse
    gains = {(s, v): 0.015 for s, v in [("epochs", 6), ("epochs", 1), ("embedding_size", 64)]}
    gains[("initial_temperature", 0.2)] = -0.1
    fake_validation(monkeypatch, gains)
    cfg, record = tuning.tune(USERS, ITEMS, INTERACTIONS, BASE)
    assert cfg == BASE
    assert record["chosen"] == "configured" and record["chosen_changes"] == {}
    assert record["gain"] == 0.0
    assert record["configured_score"] == record["chosen_score"] == pytest.approx(0.3)
    # the configured model and every variant were tried, nothing combined
    assert set(record["tried"]) == {"configured", *tuning.variants(BASE)}
    assert record["tried"]["epochs=6"]["ndcg@10"] == pytest.approx(0.3 * 1.015, abs=1e-5)
    assert record["tried"]["initial_temperature=0.2"]["ndcg@10"] == pytest.approx(0.27, abs=1e-5)
    assert record["metric"] == "ndcg@10" and record["min_gain"] == tuning.MIN_GAIN
    assert record["seeds_per_trial"] == BASE.tune_seeds == 2


def test_a_variant_that_wins_by_more_than_the_margin_is_chosen_and_its_gain_reported(monkeypatch):
    gains = {("epochs", 6): 0.10, ("epochs", 1): 0.015, ("history_half_life", 30.0): -0.2}
    fake_validation(monkeypatch, gains)
    cfg, record = tuning.tune(USERS, ITEMS, INTERACTIONS, BASE)
    assert cfg == dataclasses.replace(BASE, epochs=6)  # the seed stays the configured one
    assert record["chosen"] == "epochs=6" and record["chosen_changes"] == {"epochs": 6}
    assert record["chosen_score"] == pytest.approx(0.33, abs=1e-5)
    assert record["gain"] == pytest.approx(0.10, abs=1e-4)
    assert "combined" not in record["tried"]  # only one setting beat the configured model


@pytest.mark.parametrize(("gain", "taken"), [(0.015, False), (0.025, True)])
def test_the_margin_is_relative_to_the_configured_score(monkeypatch, gain, taken):
    for base in (0.05, 0.5):
        fake_validation(monkeypatch, {("embedding_size", 64): gain}, base=base)
        cfg, record = tuning.tune(USERS, ITEMS, INTERACTIONS, BASE)
        assert (record["chosen"] == "embedding_size=64") is taken
        assert (cfg.user_layers[-1], cfg.item_layers[-1]) == ((64, 64) if taken else (32, 32))


def test_the_winners_of_two_settings_are_combined_and_tried(monkeypatch):
    # epochs: both moves beat the margin, x2 by more; embedding size and temperature win too, the
    # half-life does not (+1%)
    gains = {
        ("epochs", 1): 0.04,
        ("epochs", 6): 0.10,
        ("embedding_size", 64): 0.05,
        ("initial_temperature", 0.05): 0.03,
        ("history_half_life", 30.0): 0.01,
    }
    calls = fake_validation(monkeypatch, gains)
    cfg, record = tuning.tune(USERS, ITEMS, INTERACTIONS, BASE)
    combined = {"epochs": 6, "embedding_size": 64, "initial_temperature": 0.05}
    assert record["tried"]["combined"]["changes"] == combined
    # the combination was trained: its configs are the last ones validated
    last = [c for c, _ in calls[-BASE.tune_seeds :]]
    assert {(c.epochs, c.user_layers[-1], c.initial_temperature) for c in last} == {(6, 64, 0.05)}
    # 1.10 x 1.05 x 1.03 beats each winner alone: the combination is chosen
    assert record["chosen"] == "combined" and record["chosen_changes"] == combined
    assert record["gain"] == pytest.approx(1.10 * 1.05 * 1.03 - 1, abs=1e-4)
    assert cfg == tuning.apply(BASE, combined)
    assert cfg.user_layers[-1] == cfg.item_layers[-1] == 64


def test_a_combination_worse_than_a_single_winner_is_not_chosen(monkeypatch):
    # epochs=6 wins by 10%, embedding_size=64 by 5%, but the two together halve the score
    def validation_ndcg(users, items, interactions, cfg):
        longer, wider = cfg.epochs == 6, cfg.user_layers[-1] == 64
        return {
            "ndcg@10": 0.3 * (0.5 if longer and wider else 1.10 if longer else 1.05 if wider else 1)
        }

    monkeypatch.setattr(tuning, "validation_ndcg", validation_ndcg)
    cfg, record = tuning.tune(USERS, ITEMS, INTERACTIONS, BASE)
    assert record["tried"]["combined"]["changes"] == {"epochs": 6, "embedding_size": 64}
    assert record["tried"]["combined"]["ndcg@10"] == pytest.approx(0.15)
    assert record["chosen"] == "epochs=6" and cfg == dataclasses.replace(BASE, epochs=6)


def test_each_trial_is_the_mean_over_seeds_seed_and_seed_plus_one(monkeypatch):
    assert BASE.tune_seeds == 2
    cfg = dataclasses.replace(BASE, seed=7)
    # seed 7 reads 0.3 x 0.9, seed 8 reads 0.3 x 1.3: the mean is 0.3 x 1.1
    calls = fake_validation(monkeypatch, {}, per_seed={7: 0.9, 8: 1.3})
    out, record = tuning.tune(USERS, ITEMS, INTERACTIONS, cfg)
    trials = 1 + len(tuning.variants(cfg))
    assert [c.seed for c, _ in calls] == [7, 8] * trials
    # every training gets the same data
    assert all(u is USERS and i is ITEMS and x is INTERACTIONS for _, (u, i, x) in calls)
    # the two runs of one trial differ only in the seed
    for first, second in zip(calls[::2], calls[1::2], strict=True):
        assert dataclasses.replace(first[0], seed=8) == second[0]
    for name, entry in record["tried"].items():
        assert entry["per_seed"] == pytest.approx([0.27, 0.39], abs=1e-5), name
        assert entry["ndcg@10"] == pytest.approx(0.33, abs=1e-5), name
        assert entry["seconds"] >= 0
    assert out == cfg and out.seed == 7  # nothing won: the configured model with its own seed


def test_model_tune_seeds_sets_the_trainings_per_trial(monkeypatch):
    cfg = dataclasses.replace(BASE, seed=7, tune_seeds=3)
    calls = fake_validation(monkeypatch, {}, per_seed={7: 0.9, 8: 1.0, 9: 1.4})
    _, record = tuning.tune(USERS, ITEMS, INTERACTIONS, cfg)
    assert [c.seed for c, _ in calls] == [7, 8, 9] * (1 + len(tuning.variants(cfg)))
    assert record["seeds_per_trial"] == 3
    assert record["tried"]["configured"]["ndcg@10"] == pytest.approx(0.33, abs=1e-5)


# --- validation_ndcg, for real ---------------------------------------------------------------------

TINY = ModelConfig(
    user_layers=(8,),
    item_layers=(8,),
    learning_rate=0.01,
    epochs=2,
    batch_size=64,
    sampled_negatives=4,
    history_length=4,
    validation_share=0.0,
    seed=3,
)
LOW_USERS = (1, 2, 3, 4, 5)  # rated their last two items 3: no relevant validation item


def tiny_data():
    """40 users, 20 items in two groups (odd users like group A, ids 100..109; even users group B),
    8 interactions each at times 1000, 1010, ...; ratings 5.0 except the last two of LOW_USERS."""
    rng = np.random.default_rng(0)
    item_ids = np.arange(100, 120)
    items = pd.DataFrame(
        {C.ITEM_ID: item_ids, "i_x": rng.normal(size=20), "i_y": rng.normal(size=20)}
    )
    user_ids = np.arange(1, 41)
    users = pd.DataFrame({C.USER_ID: user_ids, "u_x": rng.normal(size=40)})
    rows = []
    for user in user_ids:
        pool = item_ids[:10] if user % 2 else item_ids[10:]
        for t, item in enumerate(rng.choice(pool, 8, replace=False)):
            low = user in LOW_USERS and t >= 6
            rows.append((user, item, 3.0 if low else 5.0, 1000 + 10 * t))
    interactions = pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])
    return users, items, interactions


def test_validation_ndcg_trains_on_the_first_80_percent_and_scores_each_users_last_20():
    users, items, interactions = tiny_data()
    out = tuning.validation_ndcg(users, items, interactions, TINY)
    assert 0.0 <= out["ndcg@10"] <= 1.0 and 0.0 <= out["recall@10"] <= 1.0
    # each user's last 2 of 8 are the validation items; LOW_USERS rated theirs 3 (not relevant)
    assert out["users"] == 40 - len(LOW_USERS)


def test_validation_ndcg_refuses_data_without_a_relevant_validation_item():
    users, items, interactions = tiny_data()
    interactions[C.RATING] = 3.0
    with pytest.raises(RecsysError, match=r"no user has a relevant \(rated >= 4\)"):
        tuning.validation_ndcg(users, items, interactions, TINY)
