"""Token encoders of Jain & Wallace's (2019) classifier: a BiLSTM and the "average" encoder.

Both map token embeddings `(B, T, E)` and a real-token mask `(B, T)` to hidden states
`(B, T, H)` that are exactly zero at padding, so an attention distribution that strays onto
padding can never carry information into the prediction.

* `BiLSTMEncoder`: one bidirectional LSTM layer, `hidden_size` per direction, H = 2·hidden_size.
  Sequences are packed, so padding never feeds the backward direction and a padded example
  gets the same hidden states as the unpadded one (J&W's `EncoderRNN`).
* `AverageEncoder`: h_t = tanh(W e_t + b) per token, H = hidden_size. Nothing mixes tokens, so
  h_t depends on x_t alone: J&W's non-contextual control and Wiegreffe & Pinter's (2019)
  diagnostic "MLP" (J&W's `EncoderAverage` with a projection and tanh).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BiLSTMEncoder(nn.Module):
    """Bidirectional LSTM over the real tokens: `(B, T, E), (B, T) -> (B, T, 2·hidden_size)`.

    The mask must be right-padded (real tokens first), as `Vocab.encode` makes it.
    """

    def __init__(self, embed_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, embeds: Tensor, mask: Tensor) -> Tensor:
        B, T, _ = embeds.shape
        lengths = mask.sum(dim=1)  # (B,)
        # Packing needs each example's real tokens to come first; anything else would be
        # silently read in the wrong order.
        positions = torch.arange(T, device=mask.device)  # (T,)
        if not torch.equal(mask, positions[None, :] < lengths[:, None]):
            raise ValueError(
                "the BiLSTM encoder needs right-padded inputs (real tokens first, then padding); "
                "encode batches with Vocab.encode, which pads on the right."
            )
        packed = nn.utils.rnn.pack_padded_sequence(
            embeds, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, _ = self.lstm(packed)
        # pad_packed fills padding with exact zeros; total_length keeps the batch's T.
        hidden, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=T)
        return hidden  # (B, T, 2·hidden_size)


class AverageEncoder(nn.Module):
    """Per-token projection and tanh: `(B, T, E), (B, T) -> (B, T, hidden_size)`, 0 at padding."""

    def __init__(self, embed_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.projection = nn.Linear(embed_dim, hidden_size)
        self.output_size = hidden_size

    def forward(self, embeds: Tensor, mask: Tensor) -> Tensor:
        hidden = torch.tanh(self.projection(embeds))  # (B, T, H)
        # tanh(b) at a zero PAD embedding is not zero; zero it so padding holds no information.
        return hidden * mask[..., None].to(hidden.dtype)


ENCODERS: dict[str, type[nn.Module]] = {"lstm": BiLSTMEncoder, "average": AverageEncoder}
