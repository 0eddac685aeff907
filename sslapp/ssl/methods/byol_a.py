"""BYOL-A (Niizumi et al., 2021): BYOL on log-mel pictures of sounds. The method is BYOL's (an online
network predicts a momentum target's projection of another view); what makes it BYOL-A is the audio
views, mixing, random resize crops in time and frequency and gain, which a sound workspace's views
(`sslapp.ssl.audio_views`) give every method. Its heads follow the paper's (4096 hidden, 256 out), the
hidden size halved for a CPU."""

from __future__ import annotations

from sslapp.ssl.methods.byol import BYOL


class BYOLA(BYOL):
    name = "byol-a"
    defaults = {**BYOL.defaults, "hidden_dim": 2048, "output_dim": 256}
