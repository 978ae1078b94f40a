"""The gan preset's evaluation for real: blind_face test faces, NIQE, and the bicubic row as a network_g."""

from __future__ import annotations

import pytest
from fer_fixtures import synthetic_faces_and_random_fer

from srfer_plugin.studies.evaluation import evaluation_options, metric_options, run_evaluation

pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


@pytest.fixture(scope='module')
def faces_112(tmp_path_factory):
    """Two 112 px test faces (NIQE reads 96 px blocks) and a randomly initialised demo classifier."""
    root = tmp_path_factory.mktemp('faces_112')
    return synthetic_faces_and_random_fer(str(root), 112, num_train=1, num_val=1, num_test=2)


def test_bicubic_row_on_blind_face_faces_with_niqe(faces_112, tmp_path):
    data_root, checkpoint = faces_112
    bicubic_net = {'type': 'BicubicUpsampler', 'upscale': 4}
    results = {}
    for degradation in (None, 'blind_face'):
        opt = evaluation_options(
            data_root, checkpoint, None, str(tmp_path / str(degradation)), bicubic_net,
            degradation=degradation, extra_metrics=('niqe',),
        )  # fmt: skip
        assert opt['datasets']['test']['degradation'] == (degradation or {'type': 'bicubic'})
        results[degradation], _ = run_evaluation(opt)
    clean, blind = results[None], results['blind_face']
    assert {'psnr', 'ssim', 'niqe', 'acc', 'acc_hr', 'acc_bicubic'} <= set(blind)
    assert clean['acc'] == clean['acc_bicubic'] and blind['acc'] == blind['acc_bicubic'], 'the same interpolation'
    assert blind['psnr'] < clean['psnr'], 'blur, noise and JPEG cost PSNR'
    assert blind['niqe'] > 0 and blind['niqe'] != clean['niqe']
    again, _ = run_evaluation(
        evaluation_options(
            data_root, checkpoint, None, str(tmp_path / 'again'), bicubic_net,
            degradation='blind_face', extra_metrics=('niqe',),
        )
    )  # fmt: skip
    assert again == blind, 'test faces degrade identically every run'


def test_unknown_extra_metric_is_named():
    with pytest.raises(ValueError, match='lpips'):
        metric_options(4, ('lpips',))
    niqe = {'type': 'calculate_face_niqe', 'crop_border': 2, 'block_size': 32, 'better': 'lower'}
    assert metric_options(2, ('niqe',))['niqe'] == niqe
