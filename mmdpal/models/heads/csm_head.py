"""SAIP's image-level decoder (CSM head): class token -> instance
representation F_hat (Sec. 3.1, "a stack of feed-forward layers")."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmdpal.registry import MODELS


@MODELS.register_module()
class CSMHead(BaseModule):
    """DINO-style projection head of SAIP's cross-scale matching (Eq. 1).

    ``in_dims -> hidden_dims -> ... -> bottleneck_dims`` (Linear + GELU,
    ``num_layers`` linears), L2-normalised, then a bias-free linear to
    ``out_dims`` whose rows are unit vectors (DINO's weight-normed last layer
    with its gain frozen at 1, ``norm_last_layer=True``: only the direction
    ``last_weight`` is learned).

    Args:
        in_dims (int): Width of the class token.
        out_dims (int): Number of prototypes K (65536 in SAIP).
        hidden_dims (int): Width of the hidden layers. Defaults to 2048.
        bottleneck_dims (int): Width before the last layer. Defaults to 256.
        num_layers (int): Linear layers before the last one (>= 1).
            Defaults to 3.
        init_cfg (dict, optional): Defaults to xavier-uniform linears with
            zero bias (the authors' ``_init_weights``).
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 hidden_dims: int = 2048,
                 bottleneck_dims: int = 256,
                 num_layers: int = 3,
                 init_cfg=dict(
                     type='Xavier',
                     layer='Linear',
                     distribution='uniform',
                     bias=0.)):
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'CSMHead.num_layers={num_layers}: use >= 1')
        dims = [in_dims] + [hidden_dims] * (num_layers - 1) + \
            [bottleneck_dims]
        layers = []
        for i in range(num_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < num_layers - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        # the direction v of DINO's weight-normed last layer (g = 1)
        self.last_weight = nn.Parameter(torch.empty(out_dims, bottleneck_dims))
        nn.init.kaiming_uniform_(self.last_weight, a=5**0.5)  # nn.Linear's

    def forward(self, cls_token: torch.Tensor) -> torch.Tensor:
        """(N, in_dims) class tokens -> (N, out_dims) logits."""
        x = F.normalize(self.mlp(cls_token), dim=-1, p=2)  # (N, bottleneck)
        # weight_norm(g=1): w = v * (1 / ||v||_row)
        w = self.last_weight * (1. /
                                self.last_weight.norm(dim=1, keepdim=True))
        return F.linear(x, w)  # (N, K)
