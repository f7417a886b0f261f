"""The pretrained policy and its model-metrics gate."""
