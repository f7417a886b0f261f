"""Raw watch logs (simulator, MovieLens or landing deliveries) and their raw GX gate."""
