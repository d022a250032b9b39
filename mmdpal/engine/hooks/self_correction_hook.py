import copy

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm

from mmdpal.registry import HOOKS


@HOOKS.register_module()
class SelfCorrectionHook(Hook):
    """SCHP's self-correction cycles (Li et al., "Self-Correction for Human
    Parsing", TPAMI 2020), as the authors' LIP trainer runs them
    (Human-centric-Vision-Perception, HumanParsing/train.py and utils/
    schp.py; ``--schp-start 120``, ``--cycle-epochs 10``), for an mmseg
    ``EncoderDecoder`` with ``mmdpal.CE2PHead``:

    - model aggregation: at the end of epochs ``start_epoch``,
      ``start_epoch + cycle_epochs``, ... the parameters of a second
      (SCHP) model move to ``(1 - a) x SCHP + a x model`` with a =
      1 / (n + 1), n the cycles done (the first cycle copies the model);
      then its BatchNorm statistics are re-estimated over one pass of the
      training loader (running statistics reset, each batch weighted by
      its size, the model in train mode);
    - label refinement: from then on, before each training iteration, the
      SCHP model's fused parsing and edge logits of the batch are put in
      the data samples (``schp_parsing``, ``schp_edge``, ``schp_cycle``)
      for ``mmdpal.CE2PLoss``. As theirs, the SCHP model stays in train
      mode after its re-estimation: these logits use the batch's BN
      statistics (and update the running ones) and Dropout2d.
    - after the last epoch's cycle the model takes the SCHP weights: theirs
      evaluate ``schp_{n}_checkpoint.pth.tar``, not the online model.

    The SCHP model and the cycle count are saved in checkpoints (key
    ``schp``) and restored on resume.

    Args:
        start_epoch (int): Epoch (1-based) of the first cycle.
        cycle_epochs (int): Epochs between cycles.
    """

    # before CheckpointHook: the epoch's checkpoint holds the cycle's result
    priority = 'NORMAL'

    def __init__(self, start_epoch: int, cycle_epochs: int):
        self.start_epoch = start_epoch
        self.cycle_epochs = cycle_epochs
        self.schp = None
        self.cycle = 0
        self._loaded = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def before_train(self, runner) -> None:
        self.schp = copy.deepcopy(self._model(runner))
        self.schp.requires_grad_(False)
        if self._loaded is not None:
            self.schp.load_state_dict(self._loaded['state_dict'])
            self.cycle = self._loaded['cycle']
            self.schp.train(self.cycle >= 1)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        if self.cycle < 1:
            return
        with torch.no_grad():
            data = self.schp.data_preprocessor(data_batch, True)
            _, fused, edge = self.schp.decode_head(
                self.schp.extract_feat(data['inputs']))
        for i, sample in enumerate(data_batch['data_samples']):
            sample.schp_parsing = fused[i]
            sample.schp_edge = edge[i]
            sample.schp_cycle = self.cycle

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        if (epoch < self.start_epoch
                or (epoch - self.start_epoch) % self.cycle_epochs):
            return
        model = self._model(runner)
        alpha = 1.0 / (self.cycle + 1)
        for p_schp, p in zip(self.schp.parameters(), model.parameters()):
            p_schp.data.mul_(1.0 - alpha).add_(p.data, alpha=alpha)
        self.cycle += 1
        self._re_estimate_bn(runner)
        runner.logger.info(f'SelfCorrectionHook: cycle {self.cycle} done '
                           f'at epoch {epoch}')
        if epoch == runner.max_epochs:
            model.load_state_dict(self.schp.state_dict())

    def _re_estimate_bn(self, runner) -> None:
        """SCHP's ``bn_re_estimate``: statistics reset, then one pass of the
        training loader with momentum b / (n + b) for a batch of b after n
        images (their cumulative average), the original momenta restored."""
        norms = [m for m in self.schp.modules() if isinstance(m, _BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
        self.schp.train()
        seen = 0
        with torch.no_grad():
            for data_batch in runner.train_dataloader:
                data = self.schp.data_preprocessor(data_batch, True)
                b = data['inputs'].shape[0]
                for m in norms:
                    m.momentum = b / (seen + b)
                self.schp.decode_head(self.schp.extract_feat(data['inputs']))
                seen += b
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.schp is not None:
            checkpoint['schp'] = dict(
                state_dict=self.schp.state_dict(), cycle=self.cycle)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('schp')
