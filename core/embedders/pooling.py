"""Pooling of hidden states into one vector per input: spatial / token means and the dimension cap."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Hidden states wider than this are average-pooled over channels: vectors stay storable and
# kNN / UMAP stay tractable.
MAX_HIDDEN_DIM = 10_000


def cap_channels(features: torch.Tensor, max_dim: int = MAX_HIDDEN_DIM) -> torch.Tensor:
    """(n, d) -> (n, min(d, max_dim)): adaptive average pooling of neighbouring channels if d > max_dim."""
    import torch.nn.functional as F

    if features.shape[1] <= max_dim:
        return features
    return F.adaptive_avg_pool1d(features.unsqueeze(1), max_dim).squeeze(1)


def pool_hidden(hidden: torch.Tensor, max_dim: int = MAX_HIDDEN_DIM) -> torch.Tensor:
    """One image-backbone hidden state -> (n, d) by averaging every non-channel axis.

    (n, C, H, W) conv maps average over H, W; (n, tokens, hidden) transformer states average
    over tokens; (n, d) passes through. The result is capped at `max_dim` channels.
    """
    if hidden.ndim == 4:
        pooled = hidden.mean(dim=(2, 3))
    elif hidden.ndim == 3:
        pooled = hidden.mean(dim=1)
    elif hidden.ndim == 2:
        pooled = hidden
    else:
        raise ValueError(f"hidden state must have 2, 3 or 4 dims, got shape {tuple(hidden.shape)}")
    return cap_channels(pooled, max_dim)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(n, tokens, d) token states, (n, tokens) attention mask -> (n, d) mean over real tokens only."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    total = (hidden * weights).sum(dim=1)
    return total / weights.sum(dim=1).clamp(min=1e-9)


def flatten_pooled(pooled: torch.Tensor) -> torch.Tensor:
    """A pooler output -> (n, d): conv nets return (n, C, 1, 1), transformers (n, d)."""
    return pooled.reshape(pooled.shape[0], -1)
