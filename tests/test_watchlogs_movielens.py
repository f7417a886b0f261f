"""MovieLens / RecBole files mapped to the raw watch-log contract, and the ML-100K fetcher."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchlogs import fetch_ml100k as fetch
from watchlogs import load_movielens
from watchlogs.schema import CONTRACT_COLUMNS, RAW_WATCH_LOG_SCHEMA


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _check_contract(table) -> None:
    assert tuple(table.column_names[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    for field in RAW_WATCH_LOG_SCHEMA:
        assert table.schema.field(field.name).type == field.type, field.name
    for name in ("watch_seconds", "item_duration_seconds", "autoplay"):
        assert table[name].null_count == table.num_rows, name  # no playback in MovieLens
    ids = table["event_id"].to_pylist()
    assert len(set(ids)) == len(ids)
    assert ids == [f"ml-{i}" for i in range(table.num_rows)]


def test_ml100k_u_data(tmp_path):
    path = _write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t1\t891717742\n")
    table = load_movielens(path)
    _check_contract(table)
    assert table["user_id"].to_pylist() == ["196", "186"]
    assert table["item_id"].to_pylist() == ["242", "302"]
    assert table["rating"].to_pylist() == [3, 1]
    assert table["event_ts"].to_pylist() == [_ts(881250949), _ts(891717742)]
    assert "rating_raw" not in table.column_names


def test_ml1m_ratings_dat(tmp_path):
    text = "1::1193::5::978300760\n1::661::3::978302109\n6040::1097::4::956715569\n"
    table = load_movielens(_write(tmp_path / "ratings.dat", text))
    _check_contract(table)
    assert table["user_id"].to_pylist() == ["1", "1", "6040"]
    assert table["item_id"].to_pylist() == ["1193", "661", "1097"]
    assert table["rating"].to_pylist() == [5, 3, 4]
    assert table["event_ts"].to_pylist()[2] == _ts(956715569)


def test_ratings_csv_half_stars_round_half_up(tmp_path):
    text = (
        "userId,movieId,rating,timestamp\n"
        "1,307,0.5,1256677221\n"
        "1,481,2.5,1256677456\n"
        "2,1091,3.5,1256677471\n"
        "2,1257,4.5,1256677460\n"
        "3,1449,5.0,1256677264\n"
        "3,007,1.0,1256677265\n"
    )
    table = load_movielens(_write(tmp_path / "ratings.csv", text))
    _check_contract(table)
    assert table["rating"].to_pylist() == [1, 3, 4, 5, 5, 1]
    assert table["rating_raw"].to_pylist() == [0.5, 2.5, 3.5, 4.5, 5.0, 1.0]
    assert table["item_id"].to_pylist()[-1] == "007"  # the source's ids, as written
    assert table["event_ts"].to_pylist()[0] == _ts(1256677221)


def test_recbole_inter_finds_columns_by_name(tmp_path):
    text = (
        "item_id:token\ttimestamp:float\tuser_id:token\trating:float\n"
        "242\t881250949\t196\t3\n"
        "302\t891717742.5\t186\t4.5\n"
    )
    table = load_movielens(_write(tmp_path / "ml-100k.inter", text))
    _check_contract(table)
    assert table["user_id"].to_pylist() == ["196", "186"]
    assert table["item_id"].to_pylist() == ["242", "302"]
    assert table["rating"].to_pylist() == [3, 5]
    ts = table["event_ts"].cast("int64").to_pylist()
    assert ts == [881250949_000000, 891717742_500000]


def test_recbole_inter_without_rating_has_null_ratings(tmp_path):
    text = "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t100\n"
    table = load_movielens(_write(tmp_path / "implicit.inter", text))
    _check_contract(table)
    assert table["rating"].null_count == 1


def test_unknown_format_and_missing_columns_raise(tmp_path):
    with pytest.raises(ValueError, match="movies.csv"):
        load_movielens(_write(tmp_path / "movies.csv", "movieId,title\n1,Toy Story\n"))
    with pytest.raises(ValueError, match="timestamp"):
        load_movielens(_write(tmp_path / "ratings.csv", "userId,movieId,rating\n1,2,3.0\n"))
    with pytest.raises(ValueError, match="timestamp"):
        load_movielens(_write(tmp_path / "x.inter", "user_id:token\titem_id:token\n1\t2\n"))
    with pytest.raises(ValueError, match="u.data"):
        load_movielens(_write(tmp_path / "bad" / "u.data", "1\t2\tthree\t4\n"))
    with pytest.raises(ValueError, match="no such file"):
        load_movielens(tmp_path / "missing" / "u.data")


def _fake_wheel(members: dict[str, str]):
    calls: list[Path] = []

    def download(directory: Path) -> Path:
        calls.append(directory)
        wheel = directory / "recbole-1.2.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for name, text in members.items():
                archive.writestr(name, text)
        return wheel

    return download, calls


def test_fetch_ml100k_extracts_the_member_once(tmp_path):
    content = (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
    )
    download, calls = _fake_wheel({fetch.MEMBER: content, "recbole/__init__.py": ""})
    target = fetch.fetch_ml100k(tmp_path / "ml-100k", downloader=download)
    assert target == tmp_path / "ml-100k" / "ml-100k.inter"
    assert target.read_text() == content
    assert fetch.fetch_ml100k(tmp_path / "ml-100k", downloader=download) == target
    assert len(calls) == 1  # already present: no second download
    assert load_movielens(target)["user_id"].to_pylist() == ["196"]


def test_fetch_ml100k_main_and_missing_member(tmp_path, monkeypatch, capsys):
    download, _ = _fake_wheel({fetch.MEMBER: "user_id:token\n"})
    monkeypatch.setattr(fetch, "pip_download", download)
    assert fetch.main(["--dest", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "d" / "ml-100k.inter")

    empty, _ = _fake_wheel({"recbole/__init__.py": ""})
    with pytest.raises(RuntimeError, match="ml-100k.inter"):
        fetch.fetch_ml100k(tmp_path / "other", downloader=empty)
    assert not (tmp_path / "other" / "ml-100k.inter").exists()
