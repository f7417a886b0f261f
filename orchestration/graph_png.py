"""Draw the asset graph the code location defines, one band per asset group (stage), to a PNG.

    python -m orchestration.graph_png            # writes docs/asset-graph.png
    python -m orchestration.graph_png -o x.png

Offline and without graphviz: matplotlib only. Bands run top to bottom in the order the stages
depend on each other; an asset's box says how many asset checks (dbt tests, GX gates) guard it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from common.paths import PROJECT_ROOT  # noqa: E402

OUTPUT = PROJECT_ROOT / "docs" / "asset-graph.png"
PER_ROW = 5  # assets side by side in a band before it wraps
BOX_W, BOX_H, GAP_X, ROW_H, BAND_GAP = 2.8, 0.55, 0.3, 0.95, 0.45
COLOURS = ["#e8f1fb", "#eaf6ec", "#fdf1e3", "#f3ecfa", "#fbe9ee", "#e9f7f7", "#f6f6e4"]


def load_graph() -> tuple[dict[str, str], dict[str, set[str]], dict[str, int]]:
    """(group of each asset, parents of each asset, checks on each asset) from the definitions."""
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    groups, parents, checks = {}, {}, defaultdict(int)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        groups[name] = node.group_name or "default"
        parents[name] = {p.to_user_string() for p in node.parent_keys}
    for check in graph.asset_check_keys:
        checks[check.asset_key.to_user_string()] += 1
    return groups, parents, dict(checks)


def depths(parents: dict[str, set[str]]) -> dict[str, int]:
    """Longest path from a source to each asset."""
    memo: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in memo:
            known = [p for p in parents.get(name, ()) if p in parents]
            memo[name] = 1 + max((depth(p) for p in known), default=-1)
        return memo[name]

    return {name: depth(name) for name in parents}


def band_order(groups: dict[str, str], parents: dict[str, set[str]]) -> list[str]:
    """Groups in dependency order (a group after every group it reads), ties by depth."""
    deep = depths(parents)
    after: dict[str, set[str]] = defaultdict(set)
    for child, ps in parents.items():
        for p in ps:
            if p in groups and groups[p] != groups[child]:
                after[groups[child]].add(groups[p])
    rank = {g: min(deep[a] for a in groups if groups[a] == g) for g in set(groups.values())}
    order: list[str] = []
    while len(order) < len(rank):
        ready = [g for g in rank if g not in order and after[g] <= set(order)]
        ready = ready or [g for g in rank if g not in order]  # a cycle: take the shallowest
        order.append(min(ready, key=lambda g: (rank[g], g)))
    return order


def layout(
    groups, parents
) -> tuple[dict[str, tuple[float, float]], list[tuple[str, float, float]]]:
    """Box centres, and each band's (group, top, bottom); y grows downwards."""
    deep = depths(parents)
    centre: dict[str, tuple[float, float]] = {}
    bands, y = [], 0.0
    width = PER_ROW * (BOX_W + GAP_X)
    for group in band_order(groups, parents):
        members = [a for a in groups if groups[a] == group]

        def pull(a: str) -> tuple[int, float, str]:  # parents' mean x, to keep edges short
            xs = [centre[p][0] for p in parents[a] if p in centre]
            return deep[a], sum(xs) / len(xs) if xs else width / 2, a

        members.sort(key=pull)
        top = y
        y += 0.45  # the band's title
        for row_start in range(0, len(members), PER_ROW):
            row = members[row_start : row_start + PER_ROW]
            offset = (width - len(row) * (BOX_W + GAP_X)) / 2
            for i, name in enumerate(row):
                centre[name] = (offset + i * (BOX_W + GAP_X) + (BOX_W + GAP_X) / 2, y + BOX_H)
            y += ROW_H
        bands.append((group, top, y + 0.15))
        y += BAND_GAP
    return centre, bands


def draw(output: Path = OUTPUT) -> Path:
    groups, parents, checks = load_graph()
    centre, bands = layout(groups, parents)
    width = PER_ROW * (BOX_W + GAP_X)
    height = bands[-1][2] + 0.2
    fig, ax = plt.subplots(figsize=(width * 0.95, height * 0.95))
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(height, -0.6)
    ax.axis("off")
    ax.text(0, -0.35, "Asset graph: one band per stage (asset group), in run order; "
            "✓n = asset checks guarding the asset", fontsize=10, color="#333333")  # fmt: skip
    for i, (group, top, bottom) in enumerate(bands):
        ax.add_patch(FancyBboxPatch((0, top), width, bottom - top,
                     boxstyle="round,pad=0,rounding_size=0.15", fc=COLOURS[i % len(COLOURS)],
                     ec="#b0b0b0", lw=0.8, zorder=0))  # fmt: skip
        ax.text(0.12, top + 0.3, group, fontsize=10, fontweight="bold", color="#404040")
    band_of = {group: i for i, (group, _, _) in enumerate(bands)}
    for child, ps in parents.items():
        for p in ps:
            if p in centre:
                (x0, y0), (x1, y1) = centre[p], centre[child]
                same_row = abs(y0 - y1) < 1e-6
                near = band_of[groups[child]] - band_of[groups[p]] <= 1  # else drawn fainter
                ax.add_patch(FancyArrowPatch(
                    (x0, y0 + BOX_H / 2), (x1, y1 - BOX_H / 2) if not same_row else (x1, y1),
                    arrowstyle="-|>", mutation_scale=8, color="#7a7a7a" if near else "#c8c8c8",
                    lw=0.8 if near else 0.6, zorder=1 if near else 0.5,
                    connectionstyle="arc3,rad=0.25" if same_row else "arc3,rad=0.0"))  # fmt: skip
    for name, (x, y) in centre.items():
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                     boxstyle="round,pad=0,rounding_size=0.08", fc="white", ec="#505050",
                     lw=0.9, zorder=2))  # fmt: skip
        label = name.split("/")[-1]
        ax.text(x, y - 0.05, label, ha="center", va="center", fontsize=8, zorder=3,
                fontfamily="monospace")  # fmt: skip
        if checks.get(name):
            ax.text(x + BOX_W / 2 - 0.06, y + BOX_H / 2 - 0.07, f"✓{checks[name]}", ha="right",
                    va="bottom", fontsize=7, color="#2e7d32", zorder=3)  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestration.graph_png", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help="the PNG to write")
    print(f"wrote {draw(parser.parse_args().output)}")


if __name__ == "__main__":
    main()
