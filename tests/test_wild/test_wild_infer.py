"""srfer-infer --detect on photos, a folder and a video, and SRFERPredictor.predict_photo, with tiny random models."""

from __future__ import annotations

import csv
import os

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
