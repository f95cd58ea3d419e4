"""A table validated in key chunks gets the verdict GX gives on the whole table: the same failures, counts
summed over the chunks, `mostly` and uniqueness judged on the whole table."""

import re

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from recsys_core import columns as C
from recsys_core.datasets.generate import generate_dataset
from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.io.inputs import read_input
from recsys_core.io.key_chunks import key_chunks
from recsys_core.validation.checkpoints import (
    interaction_parameters,
    validate_chunks,
    validate_frame,
)
from recsys_core.validation.merge import merge

DS = "2026-01-31"
CHUNK = 150  # 600 interactions: 4 buckets by user


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    out = tmp_path_factory.mktemp("inputs")
    generate_dataset(out, users=60, items=40, interactions=600, seed=3)
    return {t: read_input(out, t).to_pandas() for t in C.INPUT_TABLES}


def params(frames, share=0.01):
    return interaction_parameters(frames[C.USERS][C.USER_ID], frames[C.ITEMS][C.ITEM_ID], DS, share)


def verdict(run) -> tuple[dict | None, list[str]]:
    """(summary, failures without the sample of values, whose order depends on the cut)."""
    try:
        return run(), []
    except DataValidationError as err:
        return None, [re.sub(r"; e\.g\. \[.*?\]", "", f) for f in err.failures]


def whole_and_chunked(frames, df, tmp_path, share=0.01):
    folder = tmp_path / "table"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False), folder / "part.parquet", row_group_size=64
    )
    chunks = list(key_chunks(pads.dataset(folder, format="parquet"), C.USER_ID, CHUNK))
    whole = verdict(
        lambda: validate_frame(
            C.INTERACTIONS, df, tmp_path / "whole", parameters=params(frames, share)
        )
    )
    cut = verdict(
        lambda: validate_chunks(
            C.INTERACTIONS,
            iter(chunks),
            tmp_path / "cut",
            parameters=params(frames, share),
            key=C.USER_ID,
        )
    )
    return whole, cut, len(chunks)


def test_good_table_passes_in_chunks_with_every_row_counted(frames, tmp_path):
    (whole, _), (cut, failures), n = whole_and_chunked(frames, frames[C.INTERACTIONS], tmp_path)
    assert n >= 3 and failures == []
    assert (
        cut["rows"] == whole["rows"] == 600
        and cut["chunks"] == n
        and cut["expectations"] == whole["expectations"]
    )


def test_bad_values_fail_with_the_counts_of_the_whole_table(frames, tmp_path):
    df = frames[C.INTERACTIONS].copy()
    df.loc[::50, C.RATING] = 11.0  # 12 rows spread over every chunk
    df.loc[:1, C.TIMESTAMP] = 10**12
    whole, cut, _ = whole_and_chunked(frames, df, tmp_path)
    assert cut[1] == whole[1] and len(cut[1]) == 2
    assert any("12 row(s) unexpected (2.00%)" in f for f in cut[1])


def test_duplicate_pairs_far_apart_are_found(frames, tmp_path):
    df = frames[C.INTERACTIONS]
    df = pa.concat_tables(
        [
            pa.Table.from_pandas(df, preserve_index=False),
            pa.Table.from_pandas(df.iloc[[0, 7, 300]], preserve_index=False),
        ]
    ).to_pandas()
    whole, cut, _ = whole_and_chunked(frames, df, tmp_path)
    assert cut[1] == whole[1]
    assert cut[1] == [
        "column ['user_id', 'item_id']: expect_compound_columns_to_be_unique failed "
        "(6 row(s) unexpected (1.00%))"
    ]


def test_orphan_share_is_judged_on_the_whole_table_not_per_chunk(frames, tmp_path):
    df = frames[C.INTERACTIONS].copy()
    df.loc[:5, C.USER_ID] = (
        10_000_000  # 6 of 600 rows, one user: about 4% of its chunk, 1% of the table
    )
    (ok, _), (cut_ok, none), _ = whole_and_chunked(frames, df, tmp_path / "a", share=0.02)
    assert none == [] and cut_ok["failed"] == ok["failed"] == 0
    whole, cut, _ = whole_and_chunked(frames, df, tmp_path / "b", share=0.005)
    assert cut[1] == whole[1] and "6 row(s) unexpected (1.00%)" in cut[1][0]


def test_row_count_is_the_sum_of_the_chunks(frames, tmp_path):
    df = frames[C.INTERACTIONS]
    chunks = [df.iloc[:0], df.iloc[:0]]
    with pytest.raises(DataValidationError, match="expect_table_row_count_to_be_between"):
        validate_chunks(
            C.INTERACTIONS, iter(chunks), tmp_path, parameters=params(frames), key=C.USER_ID
        )
    chunks = [
        df.iloc[:0],
        df[df[C.USER_ID] == df[C.USER_ID].iloc[0]],
    ]  # an empty chunk beside a full one
    assert (
        validate_chunks(
            C.INTERACTIONS, iter(chunks), tmp_path, parameters=params(frames), key=C.USER_ID
        )["failed"]
        == 0
    )


def test_uniqueness_off_the_chunk_key_is_refused(frames, tmp_path):
    df = frames[C.ITEMS]
    with pytest.raises(
        ConfigError, match="expect_column_values_to_be_unique on \\['item_id'\\] cannot be checked"
    ):
        validate_chunks(C.ITEMS, iter([df.iloc[:20], df.iloc[20:]]), tmp_path, key="title")


def rule(type_, result, **kwargs):
    return {
        "id": "1",
        "type": type_,
        "kwargs": kwargs,
        "success": True,
        "result": result,
        "exception": None,
    }


def test_rules_that_do_not_add_up_are_refused_over_chunks():
    mean = rule(
        "expect_column_mean_to_be_between", {"observed_value": 3.0}, column="rating", min_value=1
    )
    with pytest.raises(ConfigError, match="expect_column_mean_to_be_between cannot be merged"):
        merge([[mean], [mean]], key="user_id")
    assert merge([[mean]], key="user_id") == [mean]  # one chunk: GX's own verdict


def test_mostly_is_recomputed_from_the_summed_counts():
    parts = [
        rule(
            "expect_column_values_to_not_be_in_set",
            {"element_count": n, "missing_count": 0, "unexpected_count": u},
            column="user_id",
            mostly=0.9,
        )
        for n, u in ((10, 5), (90, 4))
    ]
    parts[0]["success"] = False  # 50% of its chunk, 9% of the table
    [merged] = merge([[parts[0]], [parts[1]]], key="user_id")
    assert (
        merged["success"]
        and merged["result"]["unexpected_count"] == 9
        and merged["result"]["element_count"] == 100
    )
