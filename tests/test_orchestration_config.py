"""Run config derived from the settings: every field documented, misspelt choices refused at
launch by Dagster's config validation (naming the allowed values), the same defaults as the
settings dataclasses."""

from __future__ import annotations

import typing

import dagster as dg
import pytest

from features.store import ONLINE_STORE_KINDS
from orchestration.definitions import defs
from orchestration.defs.features.assets import OnlineStoreKind


def _config_classes() -> dict[str, type[dg.Config]]:
    """{node name: its run-config class} over every asset and asset check in the code location."""
    job = defs.resolve_job_def("main_job")
    classes = {}
    for node in job.graph.node_defs:
        config_type = getattr(node, "config_field", None)
        if config_type is None:
            continue
        cls = getattr(node.compute_fn.decorated_fn, "__annotations__", {}).get("config")
        if isinstance(cls, type) and issubclass(cls, dg.Config):
            classes[node.name] = cls
    return classes


def test_every_asset_with_config_has_a_config_class():
    assert {"raw_watch_logs", "pretrained_policy", "reward_model", "advantages",
            "posttrained_policies", "batch_recommendations", "feature_registry",
            "pretrained_policy_gx_model_metrics"} <= set(_config_classes())  # fmt: skip


@pytest.mark.parametrize("node", sorted(_config_classes()))
def test_every_run_config_field_has_a_description(node):
    cls = _config_classes()[node]
    undocumented = [n for n, f in cls.model_fields.items() if not (f.description or "").strip()]
    assert not undocumented, f"{cls.__name__} fields without a description: {undocumented}"


def _validate(op: str, config: dict) -> dg.DagsterInvalidConfigError:
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        dg.validate_run_config(defs.resolve_job_def("main_job"), {"ops": {op: {"config": config}}})
    return refused.value


@pytest.mark.parametrize(
    ("op", "config", "allowed"),
    [
        ("pretrained_policy", {"kinds": ["hstu2"]}, ("hstu", "sasrec")),
        ("raw_watch_logs", {"source": "simulater"}, ("simulator", "movielens", "landing")),
        ("feature_registry", {"online_store": "redis2"}, ONLINE_STORE_KINDS),
    ],
)
def test_a_misspelt_choice_is_refused_naming_the_allowed_values(op, config, allowed):
    message = str(_validate(op, config))
    for value in allowed:
        assert value in message, message


def test_the_feature_store_choices_are_the_feature_stores():
    assert typing.get_args(OnlineStoreKind) == ONLINE_STORE_KINDS


@pytest.mark.parametrize(
    ("op", "settings_cls"),
    [
        ("pretrained_policy", "training.pretrain.stage.PretrainSettings"),
        ("reward_model", "training.reward.stage.RewardSettings"),
        ("advantages", "training.posttrain.stage.AdvantagesSettings"),
        ("posttrained_policies", "training.posttrain.stage.PosttrainSettings"),
        ("batch_recommendations", "training.serving.batch.BatchSettings"),
        ("raw_watch_logs", "watchlogs.config.SimulatorConfig"),
    ],
)
def test_the_default_config_gives_the_default_settings(op, settings_cls):
    module, name = settings_cls.rsplit(".", 1)
    expected = getattr(__import__(module, fromlist=[name]), name)()
    assert _config_classes()[op]().settings() == expected


def test_derived_choices_refuse_a_misspelt_one_by_name():
    """config_from's Literal -> Enum, in a tuple (pretrain's `kinds`) or an Optional (its
    `query_time`), validated at launch and turned back into the settings' values."""
    import dataclasses

    from common.settings import setting
    from orchestration.config import config_from

    @dataclasses.dataclass(frozen=True)
    class Models:
        kinds: tuple[typing.Literal["hstu", "sasrec"], ...] = setting(("hstu",), "models")
        query_time: typing.Literal["own", "decision"] | None = setting(None, "time")

    models_config = config_from(Models, "ModelsConfig")

    def models(config) -> None:
        del config

    models.__annotations__["config"] = models_config
    job = dg.Definitions(assets=[dg.asset(models)], jobs=[dg.define_asset_job("j")])

    def validate(config: dict) -> None:
        dg.validate_run_config(job.resolve_job_def("j"), {"ops": {"models": {"config": config}}})

    misspelt = [
        ({"kinds": ["hstu2"]}, r"Literal\['hstu', 'sasrec'\]"),
        ({"query_time": "decisoin"}, r"Literal\['own', 'decision'\]"),
    ]
    for config, allowed in misspelt:
        with pytest.raises(dg.DagsterInvalidConfigError, match=allowed):
            validate(config)
    chosen = {"kinds": ["sasrec"], "query_time": "decision"}
    validate(chosen)
    assert models_config(**chosen).settings() == Models(kinds=("sasrec",), query_time="decision")
    assert models_config().settings() == Models()
