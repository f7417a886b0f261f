"""Sequence encoders: HSTU-style and SASRec blocks behind one `SequenceEncoder` interface."""

from training.models.encoder import SequenceEncoder

__all__ = ["SequenceEncoder"]
