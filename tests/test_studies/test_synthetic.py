"""The synthetic-face experiment: plain SR and SR-FER options differ only in the classifier and its losses."""

from __future__ import annotations

import os

from srfer_plugin.studies import synthetic


def test_plain_sr_and_srfer_differ_only_in_the_classifier(tmp_path):
    plain = synthetic.sr_options('plain_sr', str(tmp_path), 'fer.pth', 100, 0, 'quick')
    srfer = synthetic.sr_options('srfer', str(tmp_path), 'fer.pth', 100, 0, 'quick')
    assert (plain['name'], srfer['name']) == ('demo_plain_sr_quick_seed0', 'demo_srfer_quick_seed0')
    assert (plain['model_type'], srfer['model_type']) == ('SafeSRModel', 'SRFERModel')
    assert srfer['network_fer']['config'] == os.path.join(synthetic.REPO_ROOT, synthetic.FER_DEMO_CONFIG)
    assert 'ignore_resume_networks' not in srfer['path']
    for key in synthetic.DEMO_SRFER_LOSSES:
        assert srfer['train'].pop(key) == synthetic.DEMO_SRFER_LOSSES[key]
    different = {'name', 'model_type', 'network_fer'}
    assert {k: v for k, v in srfer.items() if k not in different} == {
        k: v for k, v in plain.items() if k not in different
    }
    assert plain['train']['scheduler']['milestones'] == [70] and plain['datasets']['train']['dataroot_gt'] == str(
        tmp_path
    )
