"""srfer-infer --detect on photos, a folder and a video, and SRFERPredictor.predict_photo, with tiny random models."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from eval_fixtures import tiny_test_setup
from fer_fixtures import TINY_CLASSES

from srfer_plugin import infer
from srfer_plugin.face_scenes import background_bgr, composed_scene, iou

pytest.importorskip('dlib', reason='face detection needs the wild extra: pip install -e ".[wild]"')


@pytest.fixture(scope='module')
def setup(tiny_fer_root, tmp_path_factory):
    work = tmp_path_factory.mktemp('wild')
    opt_path, _ = tiny_test_setup(str(work), tiny_fer_root)
    photos = work / 'photos'
    photos.mkdir()
    scene, boxes = composed_scene((48, 96), height=240, width=320, seed=0)
    cv2.imwrite(str(photos / 'two_faces.png'), scene)
    cv2.imwrite(str(photos / 'nobody.jpg'), background_bgr(240, 320))
    video = work / 'clip.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 5, (320, 240))
    for shift in range(3):
        writer.write(np.roll(scene, 4 * shift, axis=1))
    writer.release()
    return {'opt': opt_path, 'photos': photos, 'boxes': boxes, 'video': video, 'scene': scene}


def _rows(path):
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def _args(setup, out, *inputs, extra=()):
    argv = [a for i in inputs for a in ('-i', str(i))] + ['-o', str(out), '--opt', setup['opt'], '--device', 'cpu']
    return argv + ['--no-progress', '--min-face', '40', '--lr-size', '8', *extra]


def test_photos_folder(setup, tmp_path, capsys):
    out = tmp_path / 'out'
    assert infer.main(_args(setup, out, setup['photos'], extra=['--detect'])) == 0
    printed = capsys.readouterr()
    assert 'Found 2 face(s) in 2 photo(s)/frame(s) of 2 file(s)' in printed.out
    assert 'nobody.jpg: no face found (--min-face 40 px)' in printed.err

    rows = _rows(out / 'faces.csv')
    assert list(rows[0])[:12] == ['file', 'frame', 'face', 'x', 'y', 'w', 'h', 'score', 'sr_file', 'label',
                                  'label_index', 'confidence']  # fmt: skip
    assert [k for k in rows[0] if k.startswith('prob_')] == [f'prob_{c}' for c in TINY_CLASSES]
    assert [(os.path.basename(r['file']), r['frame'], r['face']) for r in rows] == [
        ('two_faces.png', '', '1'),
        ('two_faces.png', '', '2'),
    ]
    for row, true_box in zip(rows, reversed(setup['boxes'])):  # largest first
        box = tuple(int(row[k]) for k in 'xywh')
        assert iou(box, true_box) > 0.5
        probs = np.array([float(row[f'prob_{c}']) for c in TINY_CLASSES])
        assert probs.sum() == pytest.approx(1.0, abs=1e-4)
        assert row['label'] == TINY_CLASSES[int(probs.argmax())]
        assert float(row['confidence']) == pytest.approx(probs.max(), abs=1e-5)
        sr = cv2.imread(str(out / row['sr_file']))
        assert sr.shape == (32, 32, 3)  # --lr-size 8, x4
        assert cv2.imread(str(out / row['sr_file'].replace('_sr.png', '_lr.png'))).shape == (8, 8, 3)
    annotated = cv2.imread(str(out / 'annotated' / 'two_faces.png'))
    assert annotated.shape == setup['scene'].shape and not np.array_equal(annotated, setup['scene'])
    assert (out / 'annotated' / 'nobody.png').exists()
    skipped = _rows(out / 'skipped.csv')
    assert [(os.path.basename(r['file']), r['reason']) for r in skipped] == [
        ('nobody.jpg', 'no face found (--min-face 40 px)')
    ]


def test_video_and_max_faces(setup, tmp_path):
    out = tmp_path / 'out'
    argv = _args(setup, out, setup['video'], extra=['--max-faces', '1', '--every', '2'])  # a video implies --detect
    assert infer.main(argv) == 0
    rows = _rows(out / 'faces.csv')
    assert [(r['frame'], r['face']) for r in rows] == [('0', '1'), ('2', '1')]
    assert all(int(r['h']) > 70 for r in rows)  # the larger face
    capture = cv2.VideoCapture(str(out / 'annotated' / 'clip.mp4'))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3
    assert os.path.exists(out / 'faces' / 'clip_f000002_face1_sr.png')


def test_no_face_anywhere_exits_1(setup, tmp_path):
    out = tmp_path / 'out'
    assert infer.main(_args(setup, out, setup['photos'] / 'nobody.jpg', extra=['--detect'])) == 1


def test_predict_photo(setup):
    from srfer_plugin.face_detection import DlibFaceDetector
    from srfer_plugin.predictor import SRFERPredictor
    from srfer_plugin.utils.inference_io import load_yaml

    opt = load_yaml(setup['opt'])
    predictor = SRFERPredictor.from_options(
        opt['network_g'], opt['path']['pretrain_network_g'], {**opt['network_fer'], 'freeze': True}, scale=4
    )
    assert predictor.lr_size == 32  # no fer_size nor input_size
    rgb = np.ascontiguousarray(setup['scene'][..., ::-1])
    faces = predictor.predict_photo(rgb, DlibFaceDetector(min_face=40), lr_size=12, rgb=True)
    assert len(faces) == 2 and faces[0].box[3] > faces[1].box[3]
    for face in faces:
        assert face.lr.shape == (12, 12, 3) and face.sr.shape == (48, 48, 3)
        assert face.probs.shape == (4,) and face.label_name and face.crop_box[2] > face.box[2]
    assert predictor.predict_photo(background_bgr(120, 160), DlibFaceDetector(min_face=40)) == []


@pytest.mark.parametrize(
    ('flag', 'value', 'message'),
    [
        ('--max-faces', '-1', 'argument --max-faces: -1 is below 0'),
        ('--every', '0', 'argument --every: 0 is below 1'),
        ('--face-margin', '-1', 'argument --face-margin: -1 is below 0.0'),
        ('--lr-size', '0', 'argument --lr-size: 0 is below 4'),
        ('--min-face', '5', 'argument --min-face: 5 is below 8'),
        ('--every', 'two', "argument --every: 'two' is not an integer"),
    ],
)
def test_odd_detection_arguments_are_refused_by_name(flag, value, message, capsys):
    from srfer_plugin import infer

    with pytest.raises(SystemExit) as stop:
        infer.build_parser().parse_args(['--detect', '-i', 'x.png', '-o', 'out', flag, value])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def _non_utf8(folder, name: bytes) -> bytes:
    """``folder/name`` as bytes (a name that is not UTF-8); skips the test where the file system refuses it."""
    path = os.path.join(os.fsencode(str(folder)), name)
    try:
        open(path, 'wb').close()
        os.remove(path)
    except (OSError, UnicodeError):
        pytest.skip('this file system does not allow file names that are not UTF-8')
    return path


def test_non_utf8_names_are_processed_or_skipped_not_crashed(setup, tmp_path):
    """OpenCV crashes (segfault) on paths that are not UTF-8: photos are read and every output written by Python,
    named as face-crop mode names them (``caf\\xe9``); such a video is skipped with the reason; an output folder so
    named still gets its annotated video."""
    inputs = tmp_path / 'in'
    inputs.mkdir()
    with open(_non_utf8(inputs, b'caf\xe9.png'), 'wb') as f:
        f.write(cv2.imencode('.png', setup['scene'])[1].tobytes())
    with open(_non_utf8(inputs, b'clip\xe9.mp4'), 'wb') as f:
        f.write(setup['video'].read_bytes())
    (inputs / 'clip.mp4').write_bytes(setup['video'].read_bytes())
    out = _non_utf8(tmp_path, b'out\xe9')
    argv = [sys.executable, '-m', 'srfer_plugin.infer', '--detect', '-i', str(inputs), '-o', out, '--opt', setup['opt']]
    argv += '--device cpu --no-progress --min-face 40 --lr-size 8 --max-faces 1 --every 2'.split()
    # in a child process: a segfault fails this test, not the whole session
    proc = subprocess.run(argv, capture_output=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors='replace')[-3000:]

    rows = _rows(os.path.join(out, b'faces.csv'))
    assert [(os.path.basename(r['file']), r['frame'], r['sr_file']) for r in rows] == [
        ('caf\\xe9.png', '', os.path.join('faces', 'caf\\xe9_face1_sr.png')),
        ('clip.mp4', '0', os.path.join('faces', 'clip_f000000_face1_sr.png')),
        ('clip.mp4', '2', os.path.join('faces', 'clip_f000002_face1_sr.png')),
    ]
    for row in rows:
        with open(os.path.join(out, os.fsencode(row['sr_file'])), 'rb') as f:
            assert cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)
    annotated = sorted(os.listdir(os.path.join(out, b'annotated')))
    assert annotated == [b'caf\\xe9.png', b'clip.mp4']
    assert os.path.getsize(os.path.join(out, b'annotated', b'clip.mp4')) > 0
    (skipped,) = _rows(os.path.join(out, b'skipped.csv'))
    assert os.path.basename(skipped['file']) == 'clip\\xe9.mp4'
    assert skipped['reason'] == 'file name is not valid UTF-8: OpenCV cannot open such a video (rename it)'


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='no FIFOs on this system')
def test_fifo_named_like_a_video_is_skipped_not_waited_on(setup, tmp_path):
    """A FIFO ``pipe.mp4`` (no writer) would block VideoCapture forever: skipped with the reason, as photos are."""
    inputs = tmp_path / 'in'
    inputs.mkdir()
    os.mkfifo(inputs / 'pipe.mp4')
    cv2.imwrite(str(inputs / 'a.png'), setup['scene'])
    for n, spec in enumerate((inputs, inputs / '*.*', inputs / 'pipe.mp4')):  # a folder, a glob, the FIFO alone
        out = tmp_path / f'out{n}'
        argv = [sys.executable, '-m', 'srfer_plugin.infer', *_args(setup, out, spec, extra=['--detect'])]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f'srfer infer --detect -i {spec} still waits on the FIFO after 120 s')
        assert proc.returncode == (1 if spec.name == 'pipe.mp4' else 0), proc.stderr[-3000:]
        (skipped,) = _rows(out / 'skipped.csv')
        assert skipped == {
            'file': str(inputs / 'pipe.mp4'),
            'reason': 'not a regular file (a FIFO (named pipe)): not read',
        }


def test_no_two_inputs_write_the_same_face_file(setup, tmp_path):
    """A photo ``clip_f000000.png`` and frame 0 of ``clip.mp4`` (and ``Clip.png`` beside ``clip.png``, one file on a
    case-insensitive disk) get their own face files: no output of a run replaces another."""
    inputs = tmp_path / 'in'
    inputs.mkdir()
    for name in ('clip_f000000.png', 'clip.png', 'Clip.png'):
        cv2.imwrite(str(inputs / name), setup['scene'])
    out = tmp_path / 'out'
    specs = [inputs / 'clip_f000000.png', setup['video'], inputs / 'clip.png', inputs / 'Clip.png']
    assert infer.main(_args(setup, out, *specs, extra=['--detect', '--max-faces', '1'])) == 0
    rows = _rows(out / 'faces.csv')
    assert [(os.path.basename(r['file']), r['frame']) for r in rows] == [
        ('clip_f000000.png', ''),
        ('clip.mp4', '0'),
        ('clip.mp4', '1'),
        ('clip.mp4', '2'),
        ('clip.png', ''),
        ('Clip.png', ''),
    ]
    sr_files = [r['sr_file'] for r in rows]
    assert len({name.lower() for name in sr_files}) == len(rows), sr_files
    assert sorted(os.listdir(out / 'faces')) == sorted(
        os.path.basename(f).replace('_sr', part) for f in sr_files for part in ('_sr', '_lr')
    )
    assert len({name.lower() for name in os.listdir(out / 'annotated')}) == 4
