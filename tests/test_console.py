"""The console's parts: each asset's progress line and its headline, and the closing summary as
aligned tables within the terminal's width. The console of a real run (one line per asset, no
DEBUG or dbt test lines) is tested on test_orchestration's launched tiny run."""

from __future__ import annotations

import dagster as dg

from common.reports import WIDTH, summary_text, write_report
from orchestration.console import headline, progress_line


def test_headline_is_the_first_known_metadata_entry():
    assert headline({"dagster/row_count": dg.MetadataValue.int(1500)}) == "1,500 rows"
    assert headline({"dagster/row_count": 3, "test_ndcg@10": 0.08439}) == "test ndcg@10 0.0844"
    assert headline({"feature_views": ["a", "b", "c"]}) == "3 feature views"
    assert headline({"headline": "its own words", "sessions": 5}) == "its own words"
    assert headline({"path": "/x"}) == ""
    line = progress_line(0.0, "asset", "marts/user_sequences", 0.25, "40 rows")
    assert "marts/user_sequences" in line and "0.2s" in line and line.endswith("40 rows")
    assert len(progress_line(0.0, "asset", "x" * 200, 1.0, "y" * 200)) <= 100


def test_the_summary_is_aligned_tables_per_stage(tmp_path):
    policy = {"ndcg@10": {"mean": 0.1125, "ci95": 0.011}, "kl": {"mean": 0.06, "ci95": 0.1}}
    write_report(
        "posttrain",
        {
            "dataset": "simulator",
            "protocol": "a long paragraph that the summary leaves to the JSON and Markdown",
            "test": {"simulator": {"pretrained": policy, "bc": policy, "asft@beta=1": policy}},
            "champion": {"label": None, "registered": False, "reason": "r" * 150},
        },
        root=tmp_path,
    )
    write_report("data", {"events": 1500, "users": 40, "first_event": "2025-01-01T00:21:07Z"},
                 root=tmp_path)  # fmt: skip
    text = summary_text(tmp_path)
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    assert "protocol" not in text and "a long paragraph" not in text
    header = next(line for line in lines if "ndcg@10" in line)
    rows = [line for line in lines if line.lstrip().startswith(("pretrained", "bc ", "asft@"))]
    assert len(rows) == 3 and all("0.1125 ± 0.011" in row for row in rows)
    # aligned: every row's ndcg cell ends where the header's column ends
    end = header.index("ndcg@10") + len("ndcg@10")
    assert all(row.index("0.1125 ± 0.011") + len("0.1125 ± 0.011") == end for row in rows)
    assert any(line.strip().startswith("events") for line in lines)
    assert "2025-01-01 00:21" in text
