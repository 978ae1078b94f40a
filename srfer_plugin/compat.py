"""Every fix that basicsr 1.4.2 needs on current torch/torchvision, applied in one place.

``srfer_plugin/__init__.py`` imports this module before anything imports ``basicsr``.
"""

from __future__ import annotations

from srfer_plugin_autoload import install_functional_tensor_shim

install_functional_tensor_shim()


def load_resume_state_any_device(opt: dict) -> dict | None:
    """BasicSR's ``load_resume_state`` without its ``.cuda()`` call, so ``--auto_resume`` works on CPU too.

    Args:
        opt: The parsed options (``auto_resume``, ``name``, ``path.resume_state``, ``num_gpu``).

    Returns:
        The training state, or None when there is nothing to resume.
    """
    import os

    import torch
    from basicsr.utils import check_resume, scandir

    resume_state_path = None
    if opt['auto_resume']:
        state_path = os.path.join('experiments', opt['name'], 'training_states')
        if os.path.isdir(state_path):
            states = [float(v.split('.state')[0]) for v in scandir(state_path, suffix='state', recursive=False)]
            if states:
                resume_state_path = os.path.join(state_path, f'{max(states):.0f}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    use_cuda = opt.get('num_gpu', 0) != 0 and torch.cuda.is_available()
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')
    resume_state = torch.load(resume_state_path, map_location=device, weights_only=True)
    check_resume(opt, resume_state['iter'])
    return resume_state


def patch_basicsr_train() -> None:
    """Make ``basicsr.train.train_pipeline`` resume on any device (it looks ``load_resume_state`` up at call time)."""
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state_any_device
