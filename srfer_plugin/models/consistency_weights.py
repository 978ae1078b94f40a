"""Consistency-loss weights set from the losses' gradients instead of by hand (``train.consistency_weights``).

Rule ``gradient_share``: the weight of each consistency term keeps its gradient at the SR output at a set share of
the pixel loss's gradient there::

    w_k = share_k * E[||d l_pix / d SR||] / E[||d l_k / d SR||]      (l_k at weight 1)

The norms are running means (exponential, ``momentum``) measured every ``interval`` steps (and at the first), so
the weights follow the classifier's gradient scale without the noise of a per-step renormalisation. A classifier
whose gradients at the SR face are ten times larger gets a ten times smaller weight, so the same shares suit any
classifier. Measuring costs one extra backward pass to the SR output per term on a measuring step.

With ``calibration_iters: N`` the norms are measured at the first iteration and every ``interval`` up to N, averaged
with equal weight (no ``momentum``), and the weights are then held: constant weights, as hand-set ones are, chosen
from the gradients at the start of training. N must be at least ``interval`` (and, in GAN models, whose generator
steps alone measure, above ``net_d_init_iters``). Without it the weights follow the norms for the whole run (they
rise as the SR faces come to agree with the HR ones).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.distributed as dist

RULES = ('gradient_share',)
TERMS = {'l_att': 'attention_opt', 'l_pred': 'prediction_opt'}
PIXEL_LOSSES = ('l_pix', 'l_g_pix')  # SRFERModel's and the GAN models' pixel loss
DEFAULTS = {'interval': 10, 'momentum': 0.9, 'calibration_iters': None}
KEYS = ('rule', 'shares', 'interval', 'momentum', 'calibration_iters')


class ConsistencyWeights:
    """The running weights of ``l_att`` and ``l_pred`` (``train.consistency_weights``).

    Args:
        options: ``rule`` (``gradient_share``), ``shares`` (``{l_att: s, l_pred: s}``, one per consistency loss of
            the run), ``interval`` (steps between measurements, default 10), ``momentum`` (of the running means,
            default 0.9) and ``calibration_iters`` (measure over the first N iterations, then hold the weights;
            default None: measure throughout).
        train_opt: The ``train`` section (which consistency losses are set; their ``loss_weight`` must be unset).

    Raises:
        ValueError: A key or value is wrong (the message names it).
    """

    def __init__(self, options: Mapping, train_opt: Mapping):
        where = 'train.consistency_weights'
        if not isinstance(options, Mapping):
            raise ValueError(f'{where} must be a mapping ({", ".join(KEYS)}); got {options!r}')
        unknown = sorted(set(options) - set(KEYS))
        if unknown:
            raise ValueError(f'{where}: unknown key(s) {unknown}; known: {", ".join(KEYS)}')
        if options.get('rule') not in RULES:
            raise ValueError(f'{where}.rule must be one of {RULES}; got {options.get("rule")!r}')
        pixel_opt = train_opt.get('pixel_opt')
        if not pixel_opt or not pixel_opt.get('loss_weight', 1.0):
            raise ValueError(f'{where}: the shares are of the pixel loss gradient; set train.pixel_opt (weight > 0)')
        terms = [term for term, key in TERMS.items() if train_opt.get(key)]
        shares = options.get('shares')
        if not isinstance(shares, Mapping) or set(shares) != set(terms):
            raise ValueError(f'{where}.shares must give one share per consistency loss set ({terms}); got {shares!r}')
        for term in terms:
            if 'loss_weight' in train_opt[TERMS[term]]:
                raise ValueError(
                    f'train.{TERMS[term]}.loss_weight: the weight is set by {where}; remove it (or remove {where})'
                )
            if not _positive(shares[term]):
                raise ValueError(f'{where}.shares.{term} must be a number > 0; got {shares[term]!r}')
        self.shares = {term: float(shares[term]) for term in terms}
        self.interval = options.get('interval', DEFAULTS['interval'])
        if not _whole_at_least(self.interval, 1):
            raise ValueError(f'{where}.interval must be a whole number >= 1; got {self.interval!r}')
        self.momentum = options.get('momentum', DEFAULTS['momentum'])
        if not (_number(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f'{where}.momentum must be a number in [0, 1); got {self.momentum!r}')
        self.calibration_iters = options.get('calibration_iters', DEFAULTS['calibration_iters'])
        if self.calibration_iters is not None and 'momentum' in options:
            raise ValueError(
                f"{where}: momentum is not used with calibration_iters (the window's measurements are averaged "
                'with equal weight); remove one of them'
            )
        if self.calibration_iters is not None:
            if not _whole_at_least(self.calibration_iters, 1):
                raise ValueError(
                    f'{where}.calibration_iters must be a whole number >= 1 (or left out); got '
                    f'{self.calibration_iters!r}'
                )
            if self.calibration_iters < self.interval:
                raise ValueError(
                    f'{where}.calibration_iters ({self.calibration_iters}) is below interval ({self.interval}): the '
                    'norms would be measured on the first batch alone; raise it or lower interval'
                )
            generator_start = train_opt.get('net_d_init_iters') or 0
            if _number(generator_start) and self.calibration_iters <= generator_start:
                raise ValueError(
                    f'{where}.calibration_iters ({self.calibration_iters}) must be above train.net_d_init_iters '
                    f'({generator_start}): the generator steps, which measure the norms, start after it'
                )
        self.norms: dict[str, float] = {}  # running means of the gradient norms at the SR output
        self.measurements = 0  # how many went into self.norms (the equal-weight mean of a calibration window)
        self.weights: dict[str, float] = {}

    def weigh(self, losses: dict[str, torch.Tensor], sr: torch.Tensor, current_iter: int) -> None:
        """Multiply ``l_att`` and ``l_pred`` in ``losses`` by their weights, measuring the norms on this step when
        due.

        Args:
            losses: The step's losses (``l_pix`` or ``l_g_pix``, and the consistency losses at weight 1); changed
                in place.
            sr: The SR batch the losses were computed from (with its graph).
            current_iter: The iteration (the norms are measured at the first call and every ``interval``, up to
                ``calibration_iters`` when it is set).
        """
        calibrating = self.calibration_iters is None or current_iter <= self.calibration_iters
        if not self.norms or (calibrating and current_iter % self.interval == 0):
            self._measure(losses, sr)
        for term in self.shares:
            self.weights[term] = self.shares[term] * self.norms['pixel'] / max(self.norms[term], 1e-12)
            losses[term] = losses[term] * self.weights[term]

    def _measure(self, losses: dict[str, torch.Tensor], sr: torch.Tensor) -> None:
        pixel = next(losses[key] for key in PIXEL_LOSSES if key in losses)
        named = {'pixel': pixel, **{term: losses[term] for term in self.shares}}
        norms = torch.stack(
            [torch.autograd.grad(loss, sr, retain_graph=True)[0].float().norm() for loss in named.values()]
        )
        if dist.is_available() and dist.is_initialized():  # every rank uses the same weights
            dist.all_reduce(norms)
            norms /= dist.get_world_size()
        self.measurements += 1
        for name, value in zip(named, norms.tolist()):
            previous = self.norms.get(name)
            if previous is None:
                self.norms[name] = value
            elif self.calibration_iters is not None:  # the mean of the window's measurements
                self.norms[name] = previous + (value - previous) / self.measurements
            else:
                self.norms[name] = self.momentum * previous + (1 - self.momentum) * value

    def log(self) -> dict[str, float]:
        """The current weights, as log entries (``w_att``, ``w_pred``)."""
        return {term.replace('l_', 'w_'): weight for term, weight in self.weights.items()}

    def state_dict(self) -> dict:
        """The running norms and their count (for an exact resume)."""
        return {'norms': dict(self.norms), 'measurements': self.measurements}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`."""
        self.norms = dict(state.get('norms') or {})
        self.measurements = int(state.get('measurements', 1 if self.norms else 0))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole_at_least(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _positive(value: object) -> bool:
    return _number(value) and value > 0
