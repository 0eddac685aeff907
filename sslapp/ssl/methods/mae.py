"""MAE (He et al., 2021) on a small ViT: mask most patches, encode the visible ones, and let a light
decoder reconstruct the pixels of the masked ones (MSE on per-patch normalised pixels).

Built from lightly's torchvision-based pieces (MaskedVisionTransformerTorchvision + MAEDecoder), so
it needs no timm. The encoder that is saved is the plain torchvision ViT inside, whose class token
is the feature the app uses.
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.models import utils
from lightly.models.modules.masked_autoencoder import MAEDecoder
from lightly.models.modules.masked_vision_transformer_torchvision import MaskedVisionTransformerTorchvision
from torch import Tensor, nn

from sslapp.models.backbones import VIT_SPECS, Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32, is_vit


class MAE(SSLMethod):
    name = "mae"
    defaults = {"mask_ratio": 0.75, "decoder_dim": 128, "decoder_layers": 2, "decoder_heads": 4,
                "norm_pix_loss": True}

    def __init__(self, backbone: Backbone, **hparams: Any):
        if not is_vit(backbone):
            raise ValueError(f"MAE needs a ViT backbone ({', '.join(VIT_SPECS)}), not {backbone.name}; "
                             "pick --backbone vit-tiny or another method")
        super().__init__(backbone, **hparams)
        hp = self.hparams
        if not 0 < hp["mask_ratio"] < 1:
            raise ValueError(f"mask_ratio must be between 0 and 1, got {hp['mask_ratio']}")
        vit = backbone.module
        self.patch_size = vit.patch_size
        self.sequence_length = vit.seq_length  # patches + class token
        # Wraps (and MAE-initialises) the same ViT; its own mask token is unused by MAE's encoder.
        self.masked_vit = MaskedVisionTransformerTorchvision(vit=vit)
        self.masked_vit.mask_token.requires_grad_(False)
        self.decoder = MAEDecoder(
            seq_length=self.sequence_length, num_layers=hp["decoder_layers"], num_heads=hp["decoder_heads"],
            embed_input_dim=backbone.dim, hidden_dim=hp["decoder_dim"], mlp_dim=4 * hp["decoder_dim"],
            out_dim=self.patch_size**2 * 3)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hp["decoder_dim"]))
        nn.init.normal_(self.mask_token, std=0.02)

    def view_spec(self, train_size: int) -> ViewSpec:
        return ViewSpec(n_global=1, global_size=train_size, global_scale=(0.2, 1.0), color=False,
                        blur=(0.0,), solarize=(0.0,))

    def random_mask(self, batch_size: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(idx_keep, idx_mask) token indices; the class token (index 0) is always kept."""
        return utils.random_token_mask(size=(batch_size, self.sequence_length),
                                       mask_ratio=self.hparams["mask_ratio"], device=device)

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        images = views[0]
        batch_size = images.shape[0]
        idx_keep, idx_mask = self.random_mask(batch_size, images.device)
        encoded = self.masked_vit.encode(images, idx_keep=idx_keep)
        tokens = utils.repeat_token(self.mask_token, (batch_size, self.sequence_length))
        tokens = utils.set_at_index(tokens, idx_keep, self.decoder.embed(encoded).type_as(tokens))
        pred = self.decoder.predict(utils.get_at_index(self.decoder.decode(tokens), idx_mask)).float()
        target = utils.get_at_index(utils.patchify(images, self.patch_size), idx_mask - 1).float()
        if self.hparams["norm_pix_loss"]:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        with float32(pred):
            return nn.functional.mse_loss(pred, target)

    def optimizer_config(self) -> dict[str, Any]:
        return {"name": "adamw", "lr": 1.5e-4, "betas": (0.9, 0.95), "weight_decay": 0.05, "warmup_epochs": 1}
