"""Serving the policy: the ranking path (policy), the MLflow pyfunc model (mlflow_model,
model_code), which model serves (registry), batch recommendations (batch), one user's
recommendations from the Feast online store (online), `mlflow models serve` on loopback (server)
and the `asft` command (cli)."""
