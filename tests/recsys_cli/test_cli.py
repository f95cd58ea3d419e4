"""The recsys command: readable reasons, and a bad config refused before Airflow starts."""

from recsys_cli.main import main
from recsys_cli.show import describe_reason


def test_reasons_read_as_sentences_with_titles():
    titles = {318: "The Shawshank Redemption"}
    text = describe_reason("similar_to:318; top_country:US; top_genre:Drama", titles)
    assert text == "similar to The Shawshank Redemption; popular in US; top in Drama"
    assert describe_reason("popular_fill:all", titles) == "popular"
    assert describe_reason("similar_to:5", titles) == "similar to 5"


def test_run_refuses_an_invalid_config_without_starting_airflow(tmp_path, capsys):
    code = main(["run", "--data", str(tmp_path), "--ds", "2026-01-01", "--work", str(tmp_path),
                 "--airflow-home", str(tmp_path / "af"), "--set", "model.item_layers=[64,16]"])
    assert code == 2
    assert "same size" in capsys.readouterr().err
    assert not (tmp_path / "af").exists()


def test_run_refuses_a_bad_date(tmp_path, capsys):
    code = main(["run", "--data", str(tmp_path), "--ds", "31-01-2026", "--work", str(tmp_path),
                 "--airflow-home", str(tmp_path / "af")])
    assert code == 2 and "YYYY-MM-DD" in capsys.readouterr().err
