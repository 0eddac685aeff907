"""A frame encoder for sounds' log-mel pictures: the network CPC and the wav2vec 2.0-style objective train.

A log-mel picture is a sequence of frames, not a photograph: 1-D convolutions over time read all the mel
bands of a few neighbouring frames at once (as wav2vec's feature encoder reads raw samples), giving one
vector per frame (`frames`); the clip's embedding (`forward`) is the mean and the maximum of those vectors
over time. It takes the grey 3-channel picture every sound encoder takes and reads its first channel.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH = 256  # channels per frame


class FrameEncoder(nn.Module):
    """(B, 3, MELS, FRAMES) ImageNet-normalised pictures -> (B, 2 * width): mean and max of per-frame vectors."""

    def __init__(self, mels: int = 64, width: int = WIDTH):
        super().__init__()
        self.width, self.dim = int(width), 2 * int(width)
        layers: list[nn.Module] = []
        for c_in, kernel in [(mels, 5), (width, 3), (width, 3), (width, 3)]:
            layers += [nn.Conv1d(c_in, width, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(width),
                       nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, MELS, T) -> (B, T, width): one vector per frame."""
        return self.net(x[:, 0]).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.frames(x)
        return torch.cat([z.mean(dim=1), z.amax(dim=1)], dim=1)
