"""The policy as an MLflow pyfunc model: what the registry holds, `mlflow models serve` answers
and batch recommendations call.

Input, one row per user: `item_ids` (the history's title ids) and `timestamps` (epoch seconds,
parallel to item_ids), `request_ts` (epoch seconds: when the titles are asked for) and optional
`exclude` (titles to leave out besides the history's); parameter `k` (default 10). Output, one row
per user: `item_ids` and `scores` (best first), `source` ("policy", or "popularity" for a history
with no known title) and `ignored_item_ids` (history titles the policy does not know).

The artifact is one file (weights, configs, the title vocabulary, popularity); the model's code
travels with it (`code_paths`: the `training` and `common` packages) and every distribution that
code imports is pinned (`requirements`), so loading needs neither this repository nor a guess.
Why a pyfunc rather than `mlflow.pytorch`: the pickled module answered tensors of dense ids, had
no signature, and its caller had to know the vocabulary and the exclusion rule.
"""

from __future__ import annotations

import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import Array, ColSpec, DataType, ParamSchema, ParamSpec, Schema

from training.core.data import SequenceData
from training.models import SequenceEncoder
from training.models.recommender import Recommender, Request, RequestError, popularity_of

DEFAULT_K = 10
ARTIFACT = "policy"
# The model's code: `training` (the encoder, scorer, this wrapper) and `common` (settings).
_ROOT = Path(__file__).resolve().parents[2]
CODE_PATHS = [str(_ROOT / "training"), str(_ROOT / "common")]
# Every third-party distribution the model's code imports (tests/test_serving_model.py checks
# this list against the imports of the code that loads).
REQUIREMENTS = ("torch", "numpy", "pandas", "pyarrow", "mlflow")

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(Array(DataType.string), "item_ids"),
            ColSpec(Array(DataType.double), "timestamps"),
            ColSpec(DataType.double, "request_ts"),
            ColSpec(Array(DataType.string), "exclude", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec(Array(DataType.string), "item_ids"),
            ColSpec(Array(DataType.double), "scores"),
            ColSpec(DataType.string, "source"),
            ColSpec(Array(DataType.string), "ignored_item_ids"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", DataType.long, DEFAULT_K)]),
)


def requirements() -> list[str]:
    """Pins of the installed versions (a local label such as +cpu only installs here)."""
    return [f"{name}=={version(name).split('+')[0]}" for name in REQUIREMENTS]


def _listed(value: Any) -> list[Any]:
    """A list cell as a list (JSON gives lists, schema enforcement numpy arrays; None: empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return list(value)


def requests_from_frame(frame: pd.DataFrame) -> list[Request]:
    """The model input's rows as Requests; a missing column is named."""
    missing = [c for c in ("item_ids", "timestamps", "request_ts") if c not in frame.columns]
    if missing:
        raise RequestError(f"missing input column(s) {missing}; expected {SIGNATURE.inputs}")
    exclude = frame["exclude"] if "exclude" in frame.columns else [None] * len(frame)
    return [
        Request(_listed(items), [float(t) for t in _listed(ts)], float(at), _listed(ex))
        for items, ts, at, ex in zip(
            frame["item_ids"], frame["timestamps"], frame["request_ts"], exclude, strict=True
        )
    ]


class PolicyModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of `Recommender` (module docstring: input and output)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.recommender = Recommender.load(context.artifacts[ARTIFACT])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        k = (params or {}).get("k", DEFAULT_K)
        try:
            recs = self.recommender.recommend(requests_from_frame(model_input), int(k))
        except RequestError as e:
            # MlflowException with INVALID_PARAMETER_VALUE: the server answers 400 with the text.
            raise MlflowException.invalid_parameter_value(str(e)) from e
        return pd.DataFrame(
            {
                "item_ids": [r.item_ids for r in recs],
                "scores": [r.scores for r in recs],
                "source": [r.source for r in recs],
                "ignored_item_ids": [r.ignored_item_ids for r in recs],
            }
        )


def example_input(data: SequenceData, max_events: int = 20) -> pd.DataFrame:
    """A real history from `data` (its first user's newest events), asked a minute later."""
    ev = data.events
    user = int(np.argmax(ev.lengths > 0))
    lo, hi = int(ev.offsets[user]), int(ev.offsets[user + 1])
    lo = max(lo, hi - max_events)
    items = data.vocab.items.decode(ev.items[lo:hi])
    times = [float(t) for t in ev.timestamps[lo:hi]]
    return pd.DataFrame(
        {"item_ids": [items], "timestamps": [times], "request_ts": [times[-1] + 60.0]}
    )


def log_policy(
    policy: SequenceEncoder,
    data: SequenceData,
    *,
    name: str = "model",
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log `policy` (with `data`'s title vocabulary and popularity) as a pyfunc model in the
    active MLflow run, registering it under `registered_model_name` if given."""
    recommender = Recommender(
        policy, data.vocab.items, popularity_of(data.events.items, data.n_items)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = recommender.save(Path(tmp) / "policy.pt")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).with_name("pyfunc_code.py")),
            artifacts={ARTIFACT: str(path)},
            code_paths=CODE_PATHS,
            signature=SIGNATURE,
            input_example=(example_input(data), {"k": DEFAULT_K}),
            pip_requirements=requirements(),
            registered_model_name=registered_model_name,
        )
