"""DINO (Caron et al., 2021): self-distillation from a momentum teacher that sees the global crops
into a student that sees all crops (multi-crop), with a centred, sharpened teacher softmax.

Works with ResNets (the head uses BatchNorm) and ViTs (no BatchNorm; the ViT accepts the smaller
local crops by interpolating its position embedding). The last head layer is frozen during the first
`freeze_last_layer` epochs, as in the paper. The centre is averaged across ranks under DDP.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad
from torch import Tensor

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, blur_probs, float32, is_vit, local_crop_size
from sslapp.ssl.methods.momentum import frozen_copy, momentum_update


class DINO(SSLMethod):
    name = "dino"
    defaults = {"hidden_dim": 512, "bottleneck_dim": 64, "output_dim": 2048, "n_local": 4,
                "teacher_temp": 0.04, "warmup_teacher_temp": 0.04, "warmup_teacher_temp_epochs": 0,
                "student_temp": 0.1, "center_momentum": 0.9, "momentum_start": 0.996, "momentum_end": 1.0,
                "freeze_last_layer": 1}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        vit = is_vit(backbone)
        self.patch = backbone.module.patch_size if vit else 1
        self.projection_head = self._head(backbone.dim, vit)
        self.teacher_backbone = frozen_copy(self.backbone)
        # The head's weight-normalised last layer cannot be deep-copied: build a twin and copy weights.
        self.teacher_head = self._head(backbone.dim, vit)
        self.teacher_head.load_state_dict(self.projection_head.state_dict())
        deactivate_requires_grad(self.teacher_head)
        self.momentum = hp["momentum_start"]
        self.criterion = DINOLoss(
            output_dim=hp["output_dim"], warmup_teacher_temp=hp["warmup_teacher_temp"],
            teacher_temp=hp["teacher_temp"], warmup_teacher_temp_epochs=max(1, hp["warmup_teacher_temp_epochs"]),
            student_temp=hp["student_temp"], center_momentum=hp["center_momentum"])

    def _head(self, input_dim: int, vit: bool) -> DINOProjectionHead:
        hp = self.hparams
        with warnings.catch_warnings():  # lightly still uses torch.nn.utils.weight_norm
            warnings.simplefilter("ignore", FutureWarning)
            return DINOProjectionHead(input_dim, hp["hidden_dim"], hp["bottleneck_dim"], hp["output_dim"],
                                      batch_norm=not vit, freeze_last_layer=hp["freeze_last_layer"])

    def view_spec(self, train_size: int) -> ViewSpec:
        n_local = self.hparams["n_local"]
        return ViewSpec(n_global=2, global_size=train_size, global_scale=(0.4, 1.0), n_local=n_local,
                        local_size=local_crop_size(train_size, self.patch) if n_local else 0,
                        local_scale=(0.05, 0.4), blur=blur_probs(train_size, 1.0, 0.1), solarize=(0.0, 0.2),
                        local_blur=blur_probs(train_size, 0.5)[0])

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        n = views[0].shape[0]
        globals_ = torch.cat(views[:2])
        with torch.no_grad():
            teacher = list(self.teacher_head(self.teacher_backbone(globals_)).float().split(n))
        student = list(self.projection_head(self.backbone(globals_)).float().split(n))
        if len(views) > 2:
            student += list(self.projection_head(self.backbone(torch.cat(views[2:]))).float().split(n))
        temp_epochs = self.hparams["warmup_teacher_temp_epochs"]
        with float32(student[0]):
            return self.criterion(teacher, student, epoch=epoch if temp_epochs > 0 else None)

    def on_after_backward(self, epoch: int) -> None:
        self.projection_head.cancel_last_layer_gradients(epoch)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.momentum = momentum_update(
            [(self.backbone, self.teacher_backbone), (self.projection_head, self.teacher_head)],
            step, total_steps, self.hparams["momentum_start"], self.hparams["momentum_end"])

    def optimizer_config(self) -> dict[str, Any]:
        if is_vit(self.backbone_info):
            return {"name": "adamw", "lr": 5e-4, "weight_decay": 0.04, "warmup_epochs": 1, "clip_grad": 3.0}
        return {"name": "sgd", "lr": 0.06, "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 0}
