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

Rule ``psnr_budget``: the gradient-share weights times one scale ``s`` meant to hold the PSNR cost at ``budget_db``.
A plain-SR twin of ``net_g`` trains alongside it on the same batches
(:class:`~srfer_plugin.models.plain_sr_reference.PlainSRReference`); each step measures how many dB the SR output
lies below the twin's on the batch, ``g`` (a running mean, momentum :data:`GAP_MOMENTUM`), and moves the scale::

    log s <- log s + budget_rate * (budget_db - g) / budget_db

starting from ``budget_start``, each rise at most ``budget_rate * RISE_SHARE``. The gap answers a change of the
weights about a hundred steps late, and PSNR lost early in training is not won back when the weights fall later (the
network keeps trailing its twin), so the scale starts low and rises slowly. A classifier whose consistency losses
cost more PSNR at the same shares gets smaller weights; the shares set only the ratio of the two weights. SRFERModel
only (the GAN models have no twin).

Rule ``psnr_pilot``: a pilot measures the classifier's PSNR cost, then the run starts over from plain SR with
constant weights. For the first ``pilot_iters`` steps ``net_g`` trains with the gradient-share weights (scale 1)
beside its plain-SR twin, and the running gap ``g`` is measured as in ``psnr_budget`` (from 0 at the first step,
where the two are one network). At the pilot's end ``net_g`` and its optimizer take the twin's state (the plain-SR
network of that iteration: the pilot's own PSNR cost is dropped) and the weights are the shares times
``min(1, budget_db / g)`` from then on, held: the gradient norms are measured during the pilot only (running means,
``momentum``), so the weights stay constant after it as hand-set ones do; the twin is dropped. The shares are the
most the rule gives; a classifier whose pilot costs more PSNR gets proportionally smaller weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.distributed as dist

RULES = ('gradient_share', 'psnr_budget', 'psnr_pilot')
TWIN_RULES = ('psnr_budget', 'psnr_pilot')  # the rules that train a plain-SR twin
TERMS = {'l_att': 'attention_opt', 'l_pred': 'prediction_opt'}
PIXEL_LOSSES = ('l_pix', 'l_g_pix')  # SRFERModel's and the GAN models' pixel loss
DEFAULTS = {'interval': 10, 'momentum': 0.9, 'calibration_iters': None, 'budget_rate': 0.02, 'budget_start': 0.1}
KEYS = (
    'rule', 'shares', 'interval', 'momentum', 'calibration_iters', 'budget_db', 'budget_rate', 'budget_start',
    'pilot_iters',
)  # fmt: skip
RULE_KEYS = {  # the keys of one rule only
    'psnr_budget': ('budget_db', 'budget_rate', 'budget_start'),
    'psnr_pilot': ('budget_db', 'pilot_iters'),
}
GAP_MOMENTUM = 0.95  # of the running PSNR gap (psnr_budget, psnr_pilot)
RISE_SHARE = 0.25  # psnr_budget: the scale rises at most a quarter as fast as it may fall
LOG_SCALE_LIMIT = 5.0  # the twin rules' scale stays within exp(-5) to exp(5) of the gradient-share weights


class ConsistencyWeights:
    """The running weights of ``l_att`` and ``l_pred`` (``train.consistency_weights``).

    Args:
        options: ``rule`` (``gradient_share``, ``psnr_budget`` or ``psnr_pilot``), ``shares``
            (``{l_att: s, l_pred: s}``, one per consistency loss of the run), ``interval`` (steps between
            measurements, default 10), ``momentum`` (of the running means, default 0.9) and ``calibration_iters``
            (measure over the first N iterations, then hold the weights; default None: measure throughout); with
            ``psnr_budget``, ``budget_db`` (the PSNR cost to hold, dB > 0), ``budget_rate`` (how fast the scale
            moves, default 0.02 per step) and ``budget_start`` (the scale at the first step, default 0.1); with
            ``psnr_pilot``, ``budget_db`` (the pilot gap the weights may cost in full) and ``pilot_iters`` (the
            pilot's steps, below ``total_iter``).
        train_opt: The ``train`` section (which consistency losses are set, their ``loss_weight`` unset;
            ``total_iter``).

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
        self.rule = options['rule']
        self.budget_db, self.budget_rate, start, self.pilot_iters = _rule_settings(
            options, train_opt, where, self.calibration_iters
        )
        self.log_scale = math.log(start)  # psnr_budget: log of the scale on the gradient-share weights
        self.gap: float | None = None  # psnr_budget: running PSNR gap to the plain-SR twin (dB)
        self.norms: dict[str, float] = {}  # running means of the gradient norms at the SR output
        self.measurements = 0  # how many went into self.norms (the equal-weight mean of a calibration window)
        self.weights: dict[str, float] = {}

    def weigh(
        self, losses: dict[str, torch.Tensor], sr: torch.Tensor, current_iter: int, gap_db: float | None = None
    ) -> None:
        """Multiply ``l_att`` and ``l_pred`` in ``losses`` by their weights, measuring the norms on this step when
        due.

        Args:
            losses: The step's losses (``l_pix`` or ``l_g_pix``, and the consistency losses at weight 1); changed
                in place.
            sr: The SR batch the losses were computed from (with its graph).
            current_iter: The iteration (the norms are measured at the first call and every ``interval``, up to
                ``calibration_iters`` when it is set).
            gap_db: ``psnr_budget`` and the pilot of ``psnr_pilot``: this step's PSNR gap to the plain-SR twin
                (:class:`PlainSRReference`).

        Raises:
            ValueError: A rule that measures the gap now without ``gap_db``.
        """
        measures_gap = self.rule == 'psnr_budget' or self.piloting(current_iter)
        if measures_gap:
            if gap_db is None:
                raise ValueError(f'train.consistency_weights: rule {self.rule} needs the plain-SR twin (SRFERModel)')
            self.gap = gap_db if self.gap is None else GAP_MOMENTUM * self.gap + (1 - GAP_MOMENTUM) * gap_db
        if self.rule == 'psnr_budget':
            step = min(self.budget_rate * (self.budget_db - self.gap) / self.budget_db, self.budget_rate * RISE_SHARE)
            self.log_scale = min(max(self.log_scale + step, -LOG_SCALE_LIMIT), LOG_SCALE_LIMIT)
        window = self.pilot_iters if self.rule == 'psnr_pilot' else self.calibration_iters  # then the norms hold
        calibrating = window is None or current_iter <= window
        if not self.norms or (calibrating and current_iter % self.interval == 0):
            self._measure(losses, sr)
        for term in self.shares:
            share = self.shares[term] * math.exp(self.log_scale)
            self.weights[term] = share * self.norms['pixel'] / max(self.norms[term], 1e-12)
            losses[term] = losses[term] * self.weights[term]
        if self.pilot_ends(current_iter):  # this step was the pilot's last; the run's weights from the next on
            if not math.isfinite(self.gap):
                raise FloatingPointError(f'train.consistency_weights: the pilot ended with a PSNR gap of {self.gap}')
            ratio = self.budget_db / self.gap if self.gap > 0 else 1.0
            self.log_scale = max(math.log(min(1.0, ratio)), -LOG_SCALE_LIMIT)

    def piloting(self, current_iter: int) -> bool:
        """Whether ``current_iter`` is a step of ``psnr_pilot``'s pilot (which trains the plain-SR twin)."""
        return self.rule == 'psnr_pilot' and current_iter <= self.pilot_iters

    def pilot_ends(self, current_iter: int) -> bool:
        """Whether ``current_iter`` is the last step of ``psnr_pilot``'s pilot."""
        return self.rule == 'psnr_pilot' and current_iter == self.pilot_iters

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
        """The current weights, as log entries (``w_att``, ``w_pred``; ``psnr_gap`` with the twin rules; after
        ``psnr_pilot``'s pilot, the pilot's last)."""
        entries = {term.replace('l_', 'w_'): weight for term, weight in self.weights.items()}
        if self.gap is not None:
            entries['psnr_gap'] = self.gap
        return entries

    def state_dict(self) -> dict:
        """The running norms and their count, and psnr_budget's scale and gap (for an exact resume)."""
        return {
            'norms': dict(self.norms),
            'measurements': self.measurements,
            'log_scale': self.log_scale,
            'gap': self.gap,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`."""
        self.norms = dict(state.get('norms') or {})
        self.measurements = int(state.get('measurements', 1 if self.norms else 0))
        self.log_scale = float(state.get('log_scale', self.log_scale))
        self.gap = state.get('gap')


def _rule_settings(
    options: Mapping, train_opt: Mapping, where: str, calibration_iters: int | None
) -> tuple[float | None, float | None, float, int | None]:
    """``budget_db``, ``budget_rate``, ``budget_start`` and ``pilot_iters`` of the rule, checked (None where the rule
    has no such key; the start scale is 1 but for ``psnr_budget``)."""
    rule = options['rule']
    foreign = sorted({key for keys in RULE_KEYS.values() for key in keys} - set(RULE_KEYS.get(rule, ())))
    given = [key for key in foreign if key in options]
    if given:
        owners = [name for name, keys in RULE_KEYS.items() if set(given) & set(keys)]
        raise ValueError(f'{where}: {given} belong to rule {" or ".join(owners)}; got rule {rule!r}')
    if rule == 'gradient_share':
        return None, None, 1.0, None
    if calibration_iters is not None:
        raise ValueError(f'{where}: rule {rule} sets the weights from the PSNR gap; remove calibration_iters')
    budget = options.get('budget_db')
    if not _positive(budget):
        raise ValueError(f'{where}.budget_db must be a number > 0 (the PSNR cost, in dB); got {budget!r}')
    if rule == 'psnr_pilot':
        pilot, total = options.get('pilot_iters'), train_opt.get('total_iter')
        if not _whole_at_least(pilot, 1):
            raise ValueError(f"{where}.pilot_iters must be a whole number >= 1 (the pilot's steps); got {pilot!r}")
        interval = options.get('interval', DEFAULTS['interval'])
        if pilot < interval:
            raise ValueError(
                f'{where}.pilot_iters ({pilot}) is below interval ({interval}): the norms the weights hold after the '
                'pilot would be measured on its first batch alone; raise it or lower interval'
            )
        if _number(total) and pilot >= total:
            raise ValueError(
                f'{where}.pilot_iters ({pilot}) must be below train.total_iter ({total}): the run trains on after it'
            )
        return float(budget), None, 1.0, pilot
    rate = options.get('budget_rate', DEFAULTS['budget_rate'])
    if not (_positive(rate) and rate <= 1):
        raise ValueError(f'{where}.budget_rate must be a number in (0, 1]; got {rate!r}')
    start = options.get('budget_start', DEFAULTS['budget_start'])
    limit = math.exp(LOG_SCALE_LIMIT)
    if not (_positive(start) and 1 / limit <= start <= limit):
        raise ValueError(f'{where}.budget_start must be a number in [{1 / limit:.3g}, {limit:.3g}]; got {start!r}')
    return float(budget), float(rate), float(start), None


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole_at_least(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _positive(value: object) -> bool:
    return _number(value) and value > 0
