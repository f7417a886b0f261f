"""The MLflow model's entry point (MLflow "models from code"): the logged model runs this file
to build its pyfunc, so no pickled object is stored."""

import mlflow

from training.models.pyfunc import PolicyModel

mlflow.models.set_model(PolicyModel())
