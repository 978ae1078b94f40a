"""Inference outputs never overwrite what the run did not write: ``visualize-attention`` with inputs sharing a name
and earlier pictures in ``--out``, ``srfer infer --detect`` re-reading its own outputs, and bad batch sizes."""

from __future__ import annotations

import glob
import os
import shutil

import cv2
import pytest
from eval_fixtures import tiny_test_setup

from srfer_plugin import infer
from srfer_plugin.tools import export_onnx, visualize_attention


@pytest.fixture(scope='module')
def tiny_setup(tiny_fer_root, tmp_path_factory) -> tuple[str, str]:
    """Tiny CPU options with random SR and FER weights: ``(options path, net_g path)``."""
    return tiny_test_setup(str(tmp_path_factory.mktemp('output_safety')), tiny_fer_root)


# ------------------------------------------------------------------------------ visualize-attention
def test_attention_pictures_of_same_named_inputs_and_earlier_files_are_kept(tiny_setup, tiny_fer_root, tmp_path):
    opt_path, _ = tiny_setup
    faces = [tmp_path / 'va' / 'a' / 'face.png', tmp_path / 'va' / 'b' / 'face.png']
    for face, source in zip(faces, ('happy/happy_000.png', 'sad/sad_001.png')):
        face.parent.mkdir(parents=True)
        shutil.copyfile(os.path.join(tiny_fer_root, 'val', source), face)
    out = tmp_path / 'vout'
    out.mkdir()
    (out / 'face_attention.png').write_bytes(b'an earlier picture')
    argv = ['--opt', opt_path, '--images', *map(str, faces), '--out', str(out), '--device', 'cpu']

    assert visualize_attention.main(argv) == 0
    first, second = cv2.imread(str(out / 'face_attention.png')), cv2.imread(str(out / 'face_attention_1.png'))
    assert first is not None and second is not None and first.shape == second.shape
    assert (first != second).any()  # one picture per input, neither written over
    (archived,) = glob.glob(str(out / 'archived_*' / 'face_attention.png'))
    with open(archived, 'rb') as f:
        assert f.read() == b'an earlier picture'

    assert visualize_attention.main(argv) == 0  # again: both pictures of the first run are archived
    assert len(glob.glob(str(out / 'archived_*' / 'face_attention*.png'))) == 3


def test_attention_input_among_the_pictures_to_archive_is_refused(tiny_setup, tiny_fer_root, tmp_path, capsys):
    opt_path, _ = tiny_setup
    out = tmp_path / 'vout'
    out.mkdir()
    inside = out / 'face_attention.png'  # an input at the name the other input's picture takes
    shutil.copyfile(os.path.join(tiny_fer_root, 'val', 'happy', 'happy_000.png'), inside)
    other = tmp_path / 'face.png'
    shutil.copyfile(os.path.join(tiny_fer_root, 'val', 'sad', 'sad_000.png'), other)
    argv = ['--opt', opt_path, '--images', str(inside), str(other), '--out', str(out), '--device', 'cpu']
    assert visualize_attention.main(argv) == 2
    assert 'an output of an earlier run' in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ['face_attention.png']


# ------------------------------------------------------------------------------------ infer --detect
def test_detect_rerun_refuses_its_own_earlier_outputs_as_inputs(tiny_setup, tmp_path, capsys):
    pytest.importorskip('dlib', reason='face detection needs the wild extra: pip install -e ".[wild]"')
    from srfer_plugin.face_scenes import background_bgr

    opt_path, _ = tiny_setup
    rec = tmp_path / 'rec'
    rec.mkdir()
    cv2.imwrite(str(rec / 'noface.png'), background_bgr(120, 160))
    out = rec / 'out'
    argv = ['--detect', '--recursive', '-i', str(rec), '-o', str(out), '--opt', opt_path, '--device', 'cpu']
    argv += ['--no-progress', '--min-face', '40', '--lr-size', '8']
    assert infer.main(argv) == 1  # no face: annotated/noface.png and skipped.csv only
    assert (out / 'annotated' / 'noface.png').is_file()
    capsys.readouterr()

    assert infer.main(argv) == 2  # as without --detect: the inputs would include rec/out/annotated/noface.png
    err = capsys.readouterr().err
    assert 'an output of an earlier run' in err and os.path.join('out', 'annotated') in err
    assert (out / 'annotated' / 'noface.png').is_file() and not glob.glob(str(out / 'archived_*'))


# ---------------------------------------------------------------------------------- bad batch sizes
@pytest.mark.parametrize('flag, value', [('--batch-size', '0'), ('--batch-size', '-2'), ('--pad-multiple', '0'),
                                         ('--pad-multiple', '-8')])  # fmt: skip
def test_infer_batch_size_and_pad_multiple_below_one_are_refused(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        infer.build_parser().parse_args(['-i', 'x.png', '-o', 'out', flag, value])
    assert exit_info.value.code == 2
    assert f'argument {flag}: {value} is below 1' in capsys.readouterr().err


def test_export_pad_multiple_below_one_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_onnx.build_parser().parse_args(['-o', 'out', '--pad-multiple', '0'])
    assert exit_info.value.code == 2
    assert 'argument --pad-multiple: 0 is below 1' in capsys.readouterr().err
