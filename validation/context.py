"""The file-backed Great Expectations context under `<data>/gx/`.

One pandas data source ("frames") with a dataframe asset per stage; per stage a suite, a
validation definition and a checkpoint that stores its result and updates Data Docs, all written
with `add_or_update` so the code is the source of truth and re-runs are idempotent. Data Docs land
in `<data>/gx/uncommitted/data_docs/local_site/index.html`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

# No usage statistics leave the machine; set before GX is imported.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from common.paths import data_dir, layout  # noqa: E402
from validation.offline_docs import localize_site  # noqa: E402
from validation.views import STRING_STORAGE  # noqa: E402

DATASOURCE = "frames"
BATCH_DEFINITION = "whole_frame"
DOCS_SITE = "local_site"
# Validation results keep every failing row index: the landing quarantine needs all of them.
RESULT_FORMAT = {"result_format": "COMPLETE"}

_CONTEXTS: dict[Path, Any] = {}
_REGISTERED: dict[tuple[str, str, str], Any] = {}


def gx_root(root: Path | None = None) -> Path:
    """The GX context directory: `<data>/gx/`."""
    return layout(root).gx


def docs_index_path(root: Path | None = None) -> Path:
    return gx_root(root) / "uncommitted" / "data_docs" / DOCS_SITE / "index.html"


def latest_docs_page(suite: str, root: Path | None = None) -> Path | None:
    """The Data Docs page of the suite's newest validation, if Data Docs were built since.

    Pages need no JavaScript to show their content (the index's result list does): they are
    the ones to link when the docs are read offline (styles come from public CDNs).
    """
    folder = docs_index_path(root).parent / "validations" / suite
    # validations/<suite>/<run name>/<run time, sortable>/<batch>.html
    pages = (
        sorted(folder.glob("*/*/*.html"), key=lambda p: p.parent.name) if folder.is_dir() else []
    )
    return pages[-1] if pages else None


def get_context(root: Path | None = None) -> Any:
    """The data directory's file-backed GX context (created on first use, cached per path)."""
    base = (root or data_dir()).resolve()
    if base not in _CONTEXTS:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        context = gx.get_context(mode="file", project_root_dir=str(base))
        if context.variables.progress_bars is None or context.variables.analytics_enabled:
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.variables.analytics_enabled = False
            context.variables.save()
        _CONTEXTS[base] = context
    return _CONTEXTS[base]


def _batch_definition(context: Any, stage: str) -> Any:
    # Not add_or_update: re-adding the data source would drop the other stages' assets.
    try:
        source = context.data_sources.get(DATASOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(stage)
    except LookupError:
        asset = source.add_dataframe_asset(stage)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def checkpoint_for(stage: str, suite: gx.ExpectationSuite, root: Path | None = None) -> Any:
    """The stage's checkpoint (suite + validation definition + Data Docs action), up to date.

    Registered with add_or_update once per process and suite version (writing them costs ~1 s).
    """
    context = get_context(root)
    key = (str(gx_root(root).resolve()), stage, json.dumps(suite.to_json_dict(), sort_keys=True))
    if key not in _REGISTERED:
        suite = context.suites.add_or_update(suite)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=stage, data=_batch_definition(context, stage), suite=suite)
        )
        _REGISTERED[key] = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=stage,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE])],
                result_format=RESULT_FORMAT,
            )
        )
    return _REGISTERED[key]


def run_checkpoint(
    stage: str,
    suite: gx.ExpectationSuite,
    frame: pd.DataFrame,
    root: Path | None = None,
    update_docs: bool = True,
) -> Any:
    """Validate `frame` against the stage's suite; the result is stored in the context.

    With `update_docs` the checkpoint runs (its action updates Data Docs, ~3 s); without, only
    its validation definition runs and Data Docs are left for `build_data_docs`.
    """
    checkpoint = checkpoint_for(stage, suite, root)
    batch = {"dataframe": frame}
    definition = checkpoint.validation_definitions[0]
    # GX's type rules compare a column's dtype with `pd.StringDtype()`, whose storage is this
    # option: the views' Arrow-backed strings are the "StringDtype" the suites name.
    try:
        with pd.option_context("mode.string_storage", STRING_STORAGE):
            if update_docs:
                result = checkpoint.run(batch_parameters=batch)
                return next(iter(result.run_results.values()))
            return definition.run(batch_parameters=batch, result_format=RESULT_FORMAT)
    finally:
        release_batches(definition)


def release_batches(definition: gx.ValidationDefinition) -> None:
    """Drop the frames GX's execution engine keeps after a validation: its batch cache holds the
    last validated frame of every asset for as long as the (cached) context lives, so each event
    table's frame stayed resident through every later step of a run (docs/results.md)."""
    manager = definition.data.data_asset.datasource.get_execution_engine().batch_manager
    manager.reset_batch_cache()  # the Batch objects
    manager.batch_data_cache.clear()  # the frames themselves (reset_batch_cache keeps them)


def _page(site: Path, folder: str, key: Any) -> Path:
    """The Data Docs page of a stored result or suite: its store key's parts as the path."""
    *parents, leaf = key.to_tuple()
    return site.joinpath(folder, *parents, f"{leaf}.html")


def unpublished_results(root: Path | None = None) -> list[Any]:
    """The stored validation results that have no Data Docs page yet (their store keys)."""
    site = docs_index_path(root).parent
    keys = get_context(root).validation_results_store.list_keys()
    return [key for key in keys if not _page(site, "validations", key).is_file()]


def build_data_docs(root: Path | None = None) -> Path:
    """Publish to Data Docs every stored validation result without a page yet, every suite's
    page and the index; returns the index.html path.

    A stored result never changes, so its page is rendered once: GX's full rebuild renders every
    result ever stored, a cost that grows with the data directory's history of runs
    (`python -m benchmarks.data_docs_growth`). The index still lists every result.
    """
    context = get_context(root)
    site = docs_index_path(root).parent
    results = unpublished_results(root)
    suites = context.expectations_store.list_keys()
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[*suites, *results])
    written = [
        site / "index.html",
        *(_page(site, "validations", key) for key in results),
        *(_page(site, "expectations", key) for key in suites),
    ]
    localize_site(site, written)  # render offline: CDN assets served from the site itself
    return site / "index.html"
