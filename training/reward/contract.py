"""The contract between the reward model (issue 4) and post-training (issue 5).

A reward-model ensemble scores every catalogue item as the next event after each position of a
batch of right-aligned histories, so r_hat(s, a) for the logged action and
V(s) = E_{a~pi} r_hat(s, a) come from the same row, and the policy-weighted advantage of every
state sums to zero exactly.

Saved ensembles live at `DataLayout(root).reward_model` (the trainer's) and
`DataLayout(root).reward_judge` (trained on disjoint users; evaluation only);
`training.reward.model.load_reward_ensemble(path)` returns one.
"""

from __future__ import annotations

from typing import Protocol

import torch


class CatalogueRewardModel(Protocol):
    n_members: int  # K ensemble members
    n_items: int  # catalogue size; item ids are the policy's dense ids 1..n_items (0 = padding)

    def score_catalogue(
        self,
        item_ids: torch.Tensor,  # [B, L] int64 history, right-aligned, 0 = padding
        timestamps: torch.Tensor,  # [B, L] float64 epoch seconds of the history events
        user_ids: torch.Tensor,  # [B] int64 dense user ids (the policy's vocab; 0 = unknown)
        decision_ts: torch.Tensor,  # [B, L] float64 epoch seconds of the decision after position t
    ) -> torch.Tensor:
        """[K, B, L, n_items + 1] predicted 1-5 reward of every item as the event after position t.

        Features are looked up point-in-time at `decision_ts` (never from later rows). Column 0
        (padding) is meaningless; positions whose input is padding are meaningless too (the
        ensemble does not score them: 0).
        """
        ...

    def score_catalogue_mean(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
    ) -> torch.Tensor:
        """[B, L, n_items + 1] = score_catalogue(...).mean(0), without holding the [K, ...] tensor
        (the members' mean is what V and the advantages need)."""
        ...

    def score_items(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
        candidates: torch.Tensor,  # [B, L, C] dense item ids
    ) -> torch.Tensor:
        """[K, B, L, C] = score_catalogue(...) gathered at `candidates`, without scoring the
        whole catalogue (the logged action's K scores give r_hat's ensemble spread)."""
        ...
