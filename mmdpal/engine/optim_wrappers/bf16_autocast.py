from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from mmdpal.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """Run the forward under bf16 autocast on the model's device, CPU too.

    mmengine's ``AmpOptimWrapper`` refuses CPUs; on a CPU with AVX-512 bf16
    (or AMX) the matmuls of a DPAL step run about 1.6x faster in bf16. bf16
    keeps fp32's exponent range, so no loss scaling is needed; parameters,
    gradients and the optimizer stay fp32, and mmdpal's losses are computed
    in fp32.
    """

    @contextmanager
    def optim_context(self, model: nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device_type=device, dtype=torch.bfloat16):
            yield
