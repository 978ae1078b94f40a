"""Tests of ``srfer_plugin.converters`` and ``scripts/prepare_dataset.py`` on tiny fixtures in each layout."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from fer_fixtures import REPO_ROOT

from srfer_plugin.converters import (
    PrepareError,
    ReaderOptions,
    SplitSpec,
    ferplus_majority,
    parse_split_spec,
    prepare_dataset,
)
from srfer_plugin.data.fer_layout import FER7_CLASSES, FER8_CLASSES, read_classes, read_meta_info

SIZE = 16
LABEL = {c: i for i, c in enumerate(FER8_CLASSES)}


def _img(path: str, shape: tuple[int, ...] = (12, 10, 3), value: int = 0) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(value)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    ok, buf = cv2.imencode(os.path.splitext(path)[1], img)
    assert ok
    buf.tofile(path)
    return path


def _garbage(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(b'this is not an image')
    return path


def _write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


def _meta(dst: str, split: str) -> dict[str, int]:
    return dict(read_meta_info(os.path.join(dst, f'meta_info_{split}.txt')))


def _report(dst: str) -> dict:
    with open(os.path.join(dst, 'prepare_report.json'), encoding='utf-8') as f:
        return json.load(f)


def _bad_sources(result) -> str:
    return '\n'.join(f'{s}: {r}' for s, r in result.report.bad)


def _check_images(dst: str, split: str) -> None:
    for rel, label in _meta(dst, split).items():
        img = cv2.imread(os.path.join(dst, rel), cv2.IMREAD_UNCHANGED)
        assert img.shape == (SIZE, SIZE, 3), rel
        assert rel.split('/')[1] == read_classes(os.path.join(dst, 'classes.txt'))[label]


# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def rafdb(tmp_path):
    root = tmp_path / 'basic'
    images = root / 'Image' / 'aligned'
    lines = [
        'train_00001.jpg 5',
        'train_00002.jpg 4',
        'train_00003.jpg 7',
        'test_0001.jpg 1',
        'test_0002.jpg 6',
        'train_00004.jpg 9',
        'this line is malformed',
        'test_0003.jpg 2',
        'test_0004.jpg 3',
    ]
    for i, line in enumerate(lines[:5]):
        _img(str(images / line.split()[0].replace('.jpg', '_aligned.jpg')), (100, 100, 3), i)
    _img(str(images / 'train_00004_aligned.jpg'))
    _garbage(str(images / 'test_0003_aligned.jpg'))  # unreadable; test_0004 has no file at all
    _write(str(root / 'EmoLabel' / 'list_patition_label.txt'), '\n'.join(lines) + '\n')
    return str(root)


def test_rafdb_official_split_labels_and_lmdb(rafdb, tmp_path):
    from basicsr.utils import FileClient, imfrombytes

    dst = str(tmp_path / 'out')
    result = prepare_dataset('rafdb', rafdb, dst, size=SIZE, lmdb=True, progress=False)
    assert read_classes(os.path.join(dst, 'classes.txt')) == list(FER7_CLASSES)
    assert _meta(dst, 'train') == {
        'train/sad/train_00001.png': LABEL['sad'],
        'train/happy/train_00002.png': LABEL['happy'],
        'train/neutral/train_00003.png': LABEL['neutral'],
    }
    assert _meta(dst, 'test') == {
        'test/surprise/test_0001.png': LABEL['surprise'],
        'test/angry/test_0002.png': LABEL['angry'],
    }
    assert not os.path.exists(os.path.join(dst, 'meta_info_val.txt'))
    assert result.counts['train']['sad'] == 1 and result.total == 5
    _check_images(dst, 'train')
    bad = _bad_sources(result)
    assert len(result.report.bad) == 4, bad
    assert 'line 6 (train_00004.jpg): unknown label' in bad
    assert 'line 7: malformed' in bad
    assert 'test_0003_aligned.jpg: unreadable' in bad and 'test_0004_aligned.jpg: unreadable' in bad
    assert len(_report(dst)['bad_rows']) == 4

    # lmdb keys are the meta_info paths without extension; BasicSR's FileClient reads them.
    lmdb_path = os.path.join(dst, 'lmdb', 'train.lmdb')
    assert result.lmdb_paths['train'] == lmdb_path
    client = FileClient('lmdb', db_paths=[lmdb_path], client_keys=['gt'])
    img_bytes = client.get('train/happy/train_00002', 'gt')
    on_disk = cv2.imread(os.path.join(dst, 'train/happy/train_00002.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(imfrombytes(img_bytes, float32=False), on_disk)
    assert client.get('train/happy/nope', 'gt') is None


def test_dst_is_not_overwritten_by_accident(rafdb, tmp_path):
    dst = str(tmp_path / 'out')
    prepare_dataset('rafdb', rafdb, dst, size=SIZE, progress=False)
    with pytest.raises(PrepareError, match='already holds a prepared dataset'):
        prepare_dataset('rafdb', rafdb, dst, size=SIZE, progress=False)
    result = prepare_dataset('rafdb', rafdb, dst, size=8, overwrite=True, lmdb=True, progress=False)
    assert result.total == 5


# ---------------------------------------------------------------------------------------------------------------


def _fer_rows() -> list[list[str]]:
    px = ' '.join(str(v) for v in range(0, 256, 16))  # 16 values = a 4x4 image
    return [
        ['emotion', 'pixels', 'Usage'],
        ['3', px, 'Training'],  # line 2 happy
        ['0', px, 'Training'],  # line 3 angry
        ['6', px, 'PublicTest'],  # line 4 neutral
        ['5', px, 'PrivateTest'],  # line 5 surprise
        ['9', px, 'Training'],  # line 6 unknown emotion
        ['2', px],  # line 7 malformed (no Usage)
        ['4', '1 2 3', 'Training'],  # line 8 not a square number of pixels
        ['1', px, 'PrivateTest'],  # line 9 disgust
    ]


def _write_csv(path: str, rows: list[list[str]]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        csv.writer(f).writerows(rows)
    return path


def test_fer2013(tmp_path):
    src = _write_csv(str(tmp_path / 'src' / 'fer2013.csv'), _fer_rows())
    dst = str(tmp_path / 'out')
    result = prepare_dataset('fer2013', os.path.dirname(src), dst, size=SIZE, progress=False)
    assert result.counts['train']['happy'] == 1 and result.counts['train']['angry'] == 1
    assert _meta(dst, 'val') == {'val/neutral/fer0000002.png': LABEL['neutral']}
    assert _meta(dst, 'test') == {
        'test/surprise/fer0000003.png': LABEL['surprise'],
        'test/disgust/fer0000007.png': LABEL['disgust'],
    }
    _check_images(dst, 'train')
    img = cv2.imread(os.path.join(dst, 'val/neutral/fer0000002.png'))
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()  # gray stacked to BGR
    bad = _bad_sources(result)
    assert 'fer2013.csv:line 6: unknown emotion' in bad
    assert 'fer2013.csv:line 7: malformed row' in bad
    assert 'fer2013.csv:line 8: unreadable image (expected a square number of pixels' in bad
    assert len(result.report.bad) == 3


def test_ferplus_majority_rule():
    assert ferplus_majority([6, 2, 0, 0, 0, 0, 0, 0, 1, 1]) == 0  # neutral
    assert ferplus_majority([4, 4, 0, 0, 0, 0, 0, 0, 0, 2]) is None  # no strict majority
    assert ferplus_majority([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) is None  # single votes are outliers
    assert ferplus_majority([0, 0, 0, 0, 0, 0, 0, 0, 0, 10]) == 9  # NF


@pytest.mark.parametrize('keep_contempt', [False, True])
def test_ferplus(tmp_path, keep_contempt):
    src = tmp_path / 'src'
    fer = _fer_rows()
    _write_csv(str(src / 'fer2013.csv'), fer)
    votes = [
        ['Training', 'fer0000000.png', '0', '9', '1', '0', '0', '0', '0', '0', '0', '0'],  # happy
        ['Training', 'fer0000001.png', '0', '0', '0', '0', '8', '0', '0', '2', '0', '0'],  # angry
        ['PublicTest', 'fer0000002.png', '0', '0', '0', '0', '0', '0', '0', '7', '3', '0'],  # contempt
        ['PrivateTest', 'fer0000003.png', '0', '0', '0', '0', '0', '0', '0', '0', '10', '0'],  # unknown
        ['Training', '', '0', '0', '0', '0', '0', '0', '0', '0', '0', '10'],  # NF
        ['Training', 'fer0000005.png', '5', '5', '0', '0', '0', '0', '0', '0', '0', '0'],  # no majority
        ['Training', 'fer0000006.png', 'x'],  # malformed
        ['PrivateTest', 'fer0000007.png', '0', '0', '0', '0', '0', '0', '10', '0', '0', '0'],  # fear
    ]
    header = [
        'Usage',
        'Image name',
        'neutral',
        'happiness',
        'surprise',
        'sadness',
        'anger',
        'disgust',
        'fear',
        'contempt',
        'unknown',
        'NF',
    ]
    _write_csv(str(src / 'fer2013new.csv'), [header] + votes)
    dst = str(tmp_path / 'out')
    opts = ReaderOptions(keep_contempt=keep_contempt)
    result = prepare_dataset('ferplus', str(src), dst, size=SIZE, options=opts, progress=False)
    classes = read_classes(os.path.join(dst, 'classes.txt'))
    assert classes == list(FER8_CLASSES if keep_contempt else FER7_CLASSES)
    assert _meta(dst, 'train') == {'train/happy/fer0000000.png': 1, 'train/angry/fer0000001.png': 6}
    assert _meta(dst, 'test') == {'test/fear/fer0000007.png': 4}
    if keep_contempt:
        assert _meta(dst, 'val') == {'val/contempt/fer0000002.png': 7}
    else:
        assert 'val' not in result.counts and result.report.skipped['contempt'] == 1
    assert result.report.skipped['ferplus unknown'] == 1 and result.report.skipped['ferplus NF'] == 1
    assert result.report.skipped['ferplus no majority'] == 1
    assert [s for s, _ in result.report.bad] == ['fer2013new.csv:line 8']


# ---------------------------------------------------------------------------------------------------------------


def test_affectnet_csv_manifest(tmp_path):
    src = tmp_path / 'AffectNet'
    images = src / 'Manually_Annotated_Images'
    head = [
        'subDirectory_filePath',
        'face_x',
        'face_y',
        'face_width',
        'face_height',
        'facial_landmarks',
        'expression',
        'valence',
        'arousal',
    ]
    train = [
        ('1/a.jpg', '0'),
        ('1/b.jpg', '1'),
        ('2/c.jpg', '7'),
        ('2/d.jpg', '8'),
        ('2/e.jpg', '10'),
        ('3/f.jpg', 'x'),
        ('3/missing.jpg', '2'),
    ]
    for i, (rel, _) in enumerate(train[:6]):
        _img(str(images / rel), (20, 30, 3), i)
    _img(str(images / '4/g.png'), (20, 20, 4), 9)  # BGRA
    lists = src / 'Manually_Annotated_file_lists'
    _write_csv(str(lists / 'training.csv'), [head] + [[r, '0', '0', '1', '1', '', e, '0', '0'] for r, e in train])
    _write_csv(str(lists / 'validation.csv'), [head, ['4/g.png', '0', '0', '1', '1', '', '3', '0', '0'], ['bad']])
    dst = str(tmp_path / 'out')
    result = prepare_dataset(
        'affectnet', str(src), dst, size=SIZE, options=ReaderOptions(keep_contempt=True), progress=False
    )
    assert read_classes(os.path.join(dst, 'classes.txt')) == list(FER8_CLASSES)
    assert _meta(dst, 'train') == {'train/neutral/1_a.png': 0, 'train/happy/1_b.png': 1, 'train/contempt/2_c.png': 7}
    assert _meta(dst, 'val') == {'val/surprise/4_g.png': 3}
    _check_images(dst, 'val')
    assert result.report.skipped == {'affectnet none': 1, 'affectnet non-face': 1}
    bad = _bad_sources(result)
    assert 'training.csv:line 7: unknown expression' in bad
    assert 'training.csv:line 8 (3/missing.jpg): unreadable' in bad
    assert 'validation.csv:line 3: malformed' in bad


def test_affectnet_npy_annotations_without_contempt(tmp_path):
    src = tmp_path / 'affectnet'
    for split, ids in (('train_set', ['6', '7', '9']), ('val_set', ['5'])):
        for i, e in enumerate(ids):
            _img(str(src / split / 'images' / f'{i}.jpg'), (12, 12, 3), i)
            np.save(
                str(src / split / 'annotations' / f'{i}_exp.npy')
                if (src / split / 'annotations').exists()
                else _mk(src / split / 'annotations') / f'{i}_exp.npy',
                np.array(e),
            )
    result = prepare_dataset('affectnet', str(src), str(tmp_path / 'out'), size=SIZE, progress=False)
    assert result.counts == {
        'train': dict.fromkeys(FER7_CLASSES, 0) | {'angry': 1},
        'val': dict.fromkeys(FER7_CLASSES, 0) | {'disgust': 1},
    }
    assert result.report.skipped == {'contempt': 1, 'affectnet uncertain': 1}


def _mk(path):
    os.makedirs(path, exist_ok=True)
    return path


# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def ckplus(tmp_path):
    root = tmp_path / 'CK+'
    # subject, sequence, emotion (None = unlabelled, 'bad' = malformed file)
    seqs = [
        ('S005', '001', 3),
        ('S010', '002', 5),
        ('S010', '004', None),
        ('S011', '001', 7),
        ('S014', '003', 2),
        ('S022', '001', 1),
        ('S026', '002', 'bad'),
    ]
    for subject, seq, emo in seqs:
        for frame in range(1, 6):
            name = f'{subject}_{seq}_{frame:08d}.png'
            _img(str(root / 'cohn-kanade-images' / subject / seq / name), (24, 32), frame)  # grayscale, not square
        if emo is not None:
            text = 'oops' if emo == 'bad' else f'   {emo:.7e}\n'
            _write(str(root / 'Emotion' / subject / seq / f'{subject}_{seq}_00000005_emotion.txt'), text)
    return str(root)


def test_ckplus_tree_last_frames_and_subject_split(ckplus, tmp_path):
    dst = str(tmp_path / 'out')
    opts = ReaderOptions(ckplus_last_frames=2, ckplus_neutral_first=True)
    result = prepare_dataset(
        'ckplus', ckplus, dst, size=SIZE, split='subject:0.5,0.25,0.25', seed=1, options=opts, progress=False
    )
    everything = {**_meta(dst, 'train'), **_meta(dst, 'val'), **_meta(dst, 'test')}
    # 5 labelled sequences: 2 last frames each (not for contempt) + the first frame of each as neutral
    assert len(everything) == 13 and result.total == 13
    names = {os.path.basename(p): p.split('/')[1] for p in everything}
    assert names['S005_001_00000004.png'] == 'disgust' and names['S005_001_00000005.png'] == 'disgust'
    assert names['S005_001_00000001.png'] == 'neutral' and 'S005_001_00000003.png' not in names
    assert names['S011_001_00000005.png'] == 'surprise' and names['S022_001_00000005.png'] == 'angry'
    assert [n for n in names if n.startswith('S014')] == ['S014_003_00000001.png']  # contempt dropped
    assert not any(n.startswith('S010_004') for n in names)  # unlabelled
    assert result.report.skipped == {'contempt': 2, 'ckplus unlabelled sequence': 1}
    assert [s for s, _ in result.report.bad] == [
        os.path.join('Emotion', 'S026', '002', 'S026_002_00000005_emotion.txt')
    ]
    subjects = {split: {os.path.basename(p)[:4] for p in _meta(dst, split)} for split in ('train', 'val', 'test')}
    assert not (
        subjects['train'] & subjects['val']
        or subjects['train'] & subjects['test']
        or subjects['val'] & subjects['test']
    )
    assert all(subjects.values())
    _check_images(dst, 'train')


def test_ckplus_48x48_class_folders(tmp_path):
    src = tmp_path / 'ck48'
    for i, (folder, name) in enumerate(
        [
            ('anger', 'S010_004_00000017.png'),
            ('happy', 'S011_006_00000013.png'),
            ('sadness', 'S042_002_00000010.png'),
            ('contempt', 'S138_008_00000008.png'),
            ('happy', 'noSubject.png'),
        ]
    ):
        _img(str(src / folder / name), (48, 48), i)
    result = prepare_dataset(
        'ckplus',
        str(src),
        str(tmp_path / 'out'),
        size=SIZE,
        split='all:test',
        options=ReaderOptions(keep_contempt=True),
        progress=False,
    )
    assert {c: n for c, n in result.counts['test'].items() if n} == {'angry': 1, 'happy': 1, 'sad': 1, 'contempt': 1}
    assert _bad_sources(result) == 'happy/noSubject.png: cannot parse the subject id from the file name'


@pytest.mark.parametrize(
    ('options', 'flag'),
    [
        (ReaderOptions(ckplus_neutral_first=True), '--ckplus-neutral-first'),
        (ReaderOptions(ckplus_last_frames=1), '--ckplus-last-frames 1'),
    ],
)
def test_ckplus_48x48_refuses_options_only_the_tree_can_honour(tmp_path, options, flag):
    src = tmp_path / 'ck48'
    _img(str(src / 'happy' / 'S011_006_00000013.png'), (48, 48))
    dst = tmp_path / 'out'
    with pytest.raises(PrepareError, match=f'^{flag} needs the original CK\\+ tree.*48x48 class-folder variant'):
        prepare_dataset('ckplus', str(src), str(dst), size=SIZE, split='all:test', options=options, progress=False)
    assert not dst.exists()


# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def jaffe(tmp_path):
    root = tmp_path / 'jaffe'
    codes = ['NE', 'HA', 'SA', 'SU', 'AN', 'DI', 'FE']
    n = 0
    for subject in ('KA', 'KL', 'KM', 'KR', 'MK'):
        for code in codes[:4] if subject != 'KA' else codes:
            n += 1
            _img(str(root / f'{subject}.{code}1.{n}.tiff'), (16, 16), n)
    _img(str(root / 'KA.XX1.99.tiff'), (16, 16))  # unknown code
    _garbage(str(root / 'KL.HA2.100.tiff'))  # unreadable
    _write(str(root / 'README'), 'not an image')
    return str(root)


def test_jaffe_subject_independent_split(jaffe, tmp_path):
    dst = str(tmp_path / 'out')
    result = prepare_dataset('jaffe', jaffe, dst, size=SIZE, split='subject:0.6,0.2,0.2', seed=3, progress=False)
    assert result.total == 7 + 4 * 4
    subjects = {split: {os.path.basename(p).split('_')[0] for p in _meta(dst, split)} for split in result.counts}
    assert sorted(len(s) for s in subjects.values()) == [1, 1, 3]
    assert set.union(*subjects.values()) == {'KA', 'KL', 'KM', 'KR', 'MK'}
    assert sum(len(s) for s in subjects.values()) == 5  # no subject in two splits
    assert _meta(dst, 'train') or _meta(dst, 'val')
    names = {os.path.basename(p): p.split('/')[1] for s in result.counts for p in _meta(dst, s)}
    assert names['KA_AN1_5.png'] == 'angry' and names['KA_FE1_7.png'] == 'fear'
    assert sorted(s for s, _ in result.report.bad) == ['KA.XX1.99.tiff', 'KL.HA2.100.tiff']
    again = prepare_dataset(
        'jaffe', jaffe, dst, size=SIZE, split='subject:0.6,0.2,0.2', seed=3, overwrite=True, progress=False
    )
    assert again.counts == result.counts  # seeded


# ---------------------------------------------------------------------------------------------------------------


def test_imagefolder_synonyms_and_stratified_split(tmp_path):
    src = tmp_path / 'faces'
    n = 0
    for folder, count in (('Anger', 10), ('happiness', 10), ('sadness', 5), ('neutral', 5), ('other', 1)):
        for i in range(count):
            n += 1
            _img(str(src / folder / f'img {i}.jpg'), (20, 20, 3), n)
    _garbage(str(src / 'happiness' / 'broken.png'))
    dst = str(tmp_path / 'out')
    result = prepare_dataset('imagefolder', str(src), dst, size=SIZE, split='random:0.8,0.1,0.1', progress=False)
    assert result.counts['train']['angry'] == 8 and result.counts['val']['angry'] == 1
    assert result.counts['test']['happy'] == 1 and result.counts['train']['sad'] == 4
    assert sum(c['neutral'] for c in result.counts.values()) == 5
    assert (
        'train/angry/img_0.png' in _meta(dst, 'train')
        or 'val/angry/img_0.png' in _meta(dst, 'val')
        or 'test/angry/img_0.png' in _meta(dst, 'test')
    )
    assert sorted(s for s, _ in result.report.bad) == [
        os.path.join('happiness', 'broken.png'),
        os.path.join('other', 'img 0.jpg'),
    ]


def test_imagefolder_split_folders_default_to_official(tmp_path):
    src = tmp_path / 'kaggle'
    for split, folder in (('train', 'angry'), ('train', 'surprise'), ('test', 'fear')):
        _img(str(src / split / folder / '1.jpg'), (48, 48))
    result = prepare_dataset('imagefolder', str(src), str(tmp_path / 'out'), size=SIZE, progress=False)
    assert set(result.counts) == {'train', 'test'} and result.counts['test']['fear'] == 1


# ---------------------------------------------------------------------------------------------------------------


def test_parse_split_spec():
    assert parse_split_spec('official') == SplitSpec('official')
    assert parse_split_spec('all:test') == SplitSpec('all', (('test', 1.0),))
    spec = parse_split_spec('subject:0.8,0.1,0.1')
    assert [n for n, _ in spec.ratios] == ['train', 'val', 'test'] and spec.ratios[0][1] == pytest.approx(0.8)
    assert [n for n, _ in parse_split_spec('random:0.9,0.1').ratios] == ['train', 'test']
    assert parse_split_spec('random:train=0.75,val=0.25').ratios == (('train', 0.75), ('val', 0.25))
    bad_specs = ('nope', 'subject', 'subject:1', 'random:a,b', 'random:train=1,0.5', 'subject:-1,2,0')
    for bad in (*bad_specs, 'random:0.1,0.1', 'subject:8,1,1'):
        with pytest.raises(PrepareError):
            parse_split_spec(bad)


def test_clear_errors(tmp_path, rafdb):
    with pytest.raises(PrepareError, match='does not exist.*EmoLabel'):
        prepare_dataset('rafdb', str(tmp_path / 'missing'), str(tmp_path / 'o1'), progress=False)
    empty = _mk(tmp_path / 'empty')
    with pytest.raises(PrepareError, match='list_patition_label.txt.*does not exist'):
        prepare_dataset('rafdb', str(empty), str(tmp_path / 'o2'), progress=False)
    with pytest.raises(PrepareError, match='not a CK\\+ layout'):
        prepare_dataset('ckplus', str(empty), str(tmp_path / 'o3'), progress=False)
    with pytest.raises(PrepareError, match='fer2013.csv'):
        prepare_dataset('fer2013', str(empty), str(tmp_path / 'o4'), progress=False)
    with pytest.raises(PrepareError, match='fer2013new.csv'):
        _write_csv(str(tmp_path / 'fer' / 'fer2013.csv'), _fer_rows())
        prepare_dataset('ferplus', str(tmp_path / 'fer'), str(tmp_path / 'o5'), progress=False)
    with pytest.raises(PrepareError, match='subject ids'):
        prepare_dataset('rafdb', rafdb, str(tmp_path / 'o6'), split='subject:0.8,0.2', progress=False)
    with pytest.raises(PrepareError, match='no contempt'):
        prepare_dataset('rafdb', rafdb, str(tmp_path / 'o7'), options=ReaderOptions(keep_contempt=True))
    assert not any(os.path.exists(tmp_path / f'o{i}') for i in range(1, 8))


def test_cli(jaffe, tmp_path, capsys):
    dst = str(tmp_path / 'cli_out')
    script = os.path.join(REPO_ROOT, 'scripts', 'prepare_dataset.py')
    cmd = [
        sys.executable,
        script,
        '--format',
        'jaffe',
        '--src',
        jaffe,
        '--dst',
        dst,
        '--size',
        str(SIZE),
        '--split',
        'subject:0.6,0.2,0.2',
        '--seed',
        '3',
        '--lmdb',
        '--strict',
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # --strict: bad rows present
    assert 'total' in proc.stdout and 'bad rows: 2' in proc.stdout and 'KA.XX1.99.tiff' in proc.stdout
    assert read_classes(os.path.join(dst, 'classes.txt')) == list(FER7_CLASSES)
    assert os.path.isdir(os.path.join(dst, 'lmdb', 'train.lmdb'))
    # Error path in-process (a second subprocess would double the import time): clear message, exit status 2.
    spec = importlib.util.spec_from_file_location('prepare_dataset_cli', script)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main(['--format', 'jaffe', '--src', str(tmp_path / 'nowhere'), '--dst', dst, '--overwrite']) == 2
    err = capsys.readouterr().err
    assert 'nowhere' in err and 'KA.AN1.39.tiff' in err


def test_source_images_are_read_upright_whatever_their_kind(tmp_path):
    """A phone JPEG stored sideways with an EXIF orientation is turned upright (as the datasets read it); a 16-bit
    PNG keeps its depth for the converter's scaling; grayscale stays one channel; an alpha channel is dropped."""
    from PIL import Image

    from srfer_plugin.converters.image_io import read_image_file

    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :8] = 255  # a white band on the left of the stored pixels
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / 'sideways.jpg', exif=exif.tobytes(), quality=95)
    upright = read_image_file(str(tmp_path / 'sideways.jpg'))
    assert upright.shape == (32, 16, 3)
    assert upright[:8].mean() > 200 and upright[-8:].mean() < 50  # the band is now on top

    deep = np.full((4, 4, 4), 0x8000, np.uint16)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    read = read_image_file(str(tmp_path / 'deep.png'))
    assert read.dtype == np.uint8 and read.shape == (4, 4, 3) and (read == 0x80).all()
    cv2.imwrite(str(tmp_path / 'gray.png'), np.full((4, 4), 7, np.uint8))
    assert read_image_file(str(tmp_path / 'gray.png')).shape == (4, 4)
