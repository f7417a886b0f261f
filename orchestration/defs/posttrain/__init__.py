"""Post-training: the advantages (with their gate) and the study with its champion."""
