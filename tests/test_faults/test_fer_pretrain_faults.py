"""``srfer train-fer`` and ``srfer prepare-dataset`` faults: bad input stops before training, nothing is lost.

- a truncated image of any split is named (with its split) before the Runner is built;
- a dataset without a test split trains, writes ``fer_final.pth`` and skips the test; ``fer_final.pth`` is written
  before the test, so a failing test loses no training;
- fewer than one epoch is refused; an earlier run's results in the work dir are archived, not overwritten;
- a RAF-DB label file (or an AffectNet csv) that lists an image twice is reported row by row;
- a dataset whose classes (or labels) do not fit the config's ``model.head.num_classes`` is refused, naming both,
  before the Runner is built.
"""

from __future__ import annotations

import glob
import json
import os

import cv2
import numpy as np
import pytest
import torch
from fer_fixtures import REPO_ROOT, TINY_CLASSES, make_tiny_fer_dataset

from srfer_plugin.converters import prepare_dataset
from srfer_plugin.data.fer_layout import read_meta_info

TINY_CONFIG = os.path.join(REPO_ROOT, 'options', 'fer', 'resnet18_fer7_tiny.py')
SPLITS = {'train': 2, 'val': 1, 'test': 1}  # images per class (4 classes)
TINY_HEAD = {'model.head.num_classes': len(TINY_CLASSES)}  # the tiny datasets' 4 classes, not the config's 7

pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


@pytest.fixture
def cpu_env(monkeypatch):
    """train_fer(device='cpu') hides the GPUs through CUDA_VISIBLE_DEVICES; restore it after the test."""
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')


def _no_runner(monkeypatch) -> None:
    from mmengine.runner import Runner

    def refuse(*args, **kwargs):
        raise AssertionError('the Runner was built')

    monkeypatch.setattr(Runner, 'from_cfg', refuse)


def _truncate(path: str) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[: len(data) // 2])


def _options(tmp_path, data_root: str, cfg_options: dict | None = None, **kwargs) -> dict:
    """train_fer's options for a tiny 4-class dataset (the config's head set to 4 classes)."""
    cfg_options = {**TINY_HEAD, **(cfg_options or {})}
    return {'work_dir': str(tmp_path / 'work'), 'data_root': data_root, 'device': 'cpu', 'cfg_options': cfg_options,
            **kwargs}  # fmt: skip


# --- bad images: found before training, listed with their split ------------------------------------------------


def test_a_truncated_image_of_any_split_is_named_before_training(tmp_path, monkeypatch, cpu_env):
    from srfer_plugin.fer_pretrain import train_fer
    from srfer_plugin.fer_pretrain_checks import FERDataError

    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class=SPLITS)
    _truncate(os.path.join(root, 'train', 'happy', 'happy_001.png'))
    os.remove(os.path.join(root, 'test', 'sad', 'sad_000.png'))
    with open(os.path.join(root, 'val', 'neutral', 'neutral_000.png'), 'wb') as f:
        f.write(b'not an image')
    _no_runner(monkeypatch)
    with pytest.raises(FERDataError) as caught:
        train_fer(TINY_CONFIG, max_epochs=1, **_options(tmp_path, root))
    message = str(caught.value)
    assert '3 image(s) of the dataset cannot be used' in message
    assert f'train: {os.path.join(root, "train", "happy", "happy_001.png")}: corrupt or truncated PNG' in message
    assert f'val: {os.path.join(root, "val", "neutral", "neutral_000.png")}: not an image' in message
    assert f'test: {os.path.join(root, "test", "sad", "sad_000.png")}: file is missing' in message
    assert not (tmp_path / 'work').exists()


def test_a_missing_train_or_val_split_is_refused_before_training(tmp_path, monkeypatch, cpu_env):
    from srfer_plugin.fer_pretrain import train_fer
    from srfer_plugin.fer_pretrain_checks import FERDataError

    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class={'train': 2, 'test': 1})
    _no_runner(monkeypatch)
    with pytest.raises(FERDataError, match=r"val split: '.*meta_info_val.txt' does not exist"):
        train_fer(TINY_CONFIG, max_epochs=1, **_options(tmp_path, root))
    os.remove(os.path.join(root, 'meta_info_train.txt'))
    with pytest.raises(FERDataError, match=r"train split: '.*meta_info_train.txt' does not exist"):
        train_fer(TINY_CONFIG, max_epochs=1, **_options(tmp_path, root))
    assert not (tmp_path / 'work').exists()


# --- epochs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('epochs', ['0', '-1'])
def test_fewer_than_one_epoch_is_refused(tmp_path, monkeypatch, capsys, cpu_env, epochs):
    from srfer_plugin.fer_pretrain import train_fer
    from srfer_plugin.tools.train_fer import main

    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class=SPLITS)
    work = str(tmp_path / 'work')
    _no_runner(monkeypatch)
    argv = [TINY_CONFIG, '--data-root', root, '--work-dir', work, '--device', 'cpu', '--max-epochs', epochs]
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser
        main(argv)
    assert exit_info.value.code == 2 and f'--max-epochs: {epochs} is below 1' in capsys.readouterr().err
    with pytest.raises(ValueError, match=f'--max-epochs must be at least 1, got {epochs}'):
        train_fer(TINY_CONFIG, max_epochs=int(epochs), **_options(tmp_path, root))
    with pytest.raises(ValueError, match=f'train_cfg.max_epochs must be at least 1, got {epochs}'):
        train_fer(TINY_CONFIG, **_options(tmp_path, root, cfg_options={'train_cfg.max_epochs': int(epochs)}))
    assert not os.path.exists(work)


# --- no test split; earlier results kept -----------------------------------------------------------------------

EARLIER = {'fer_final.pth': b'earlier final', 'fer_test_accuracy.json': b'{"earlier": true}', 'epoch_1.pth': b'e1'}


@pytest.fixture(scope='module')
def trained_without_test_split(tmp_path_factory):
    """One epoch on a dataset without a test split, into a work dir holding an earlier run's results."""
    from srfer_plugin.fer_pretrain import train_fer

    tmp_path = tmp_path_factory.mktemp('no_test')
    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class={'train': 2, 'val': 1})
    work = tmp_path / 'work'
    work.mkdir()
    for name, content in EARLIER.items():
        (work / name).write_bytes(content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('CUDA_VISIBLE_DEVICES', '')
        from contextlib import redirect_stdout
        from io import StringIO

        out = StringIO()
        with redirect_stdout(out):
            summary = train_fer(
                TINY_CONFIG, max_epochs=1, work_dir=str(work), data_root=root, device='cpu', cfg_options=TINY_HEAD
            )
    return summary, str(work), root, out.getvalue()


def test_no_test_split_trains_writes_fer_final_and_skips_the_test(trained_without_test_split):
    summary, work, root, out = trained_without_test_split
    assert 'no test split' in out and 'meta_info_test.txt does not exist): the test is skipped' in out
    assert summary['accuracy_top1'] is None and summary['num_test_images'] == 0
    assert summary['test_skipped'] == f'{os.path.join(root, "meta_info_test.txt")} does not exist'
    assert summary['fer_final'] == os.path.join(work, 'fer_final.pth') and summary['epoch'] == 1
    final = torch.load(summary['fer_final'], map_location='cpu', weights_only=True)
    assert final['meta']['classes'] == ['neutral', 'happy', 'sad', 'surprise']
    assert final['meta']['test_accuracy_top1'] is None and final['meta']['epoch'] == 1
    with open(os.path.join(work, 'fer_test_accuracy.json'), encoding='utf-8') as f:
        assert json.load(f) == summary


def test_a_rerun_archives_the_earlier_results(trained_without_test_split):
    summary, work, _, out = trained_without_test_split
    (archive,) = glob.glob(os.path.join(work, 'archived_*'))
    for name, content in EARLIER.items():
        with open(os.path.join(archive, name), 'rb') as f:
            assert f.read() == content, name
    assert f'note: moved the results of an earlier run in {work}' in out and archive in out
    assert os.path.isfile(os.path.join(work, 'epoch_1.pth')) and os.path.getsize(os.path.join(work, 'epoch_1.pth'))


def test_reusing_an_untested_run(trained_without_test_split, monkeypatch, capsys):
    from srfer_plugin.fer_pretrain import train_fer

    summary, work, root, _ = trained_without_test_split
    _no_runner(monkeypatch)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    again = train_fer(
        TINY_CONFIG, reuse=True, max_epochs=1, work_dir=work, data_root=root, device='cpu', cfg_options=TINY_HEAD
    )
    assert again == summary and 'not tested: ' in capsys.readouterr().out


def test_fer_final_is_written_before_the_test(tmp_path, monkeypatch, cpu_env):
    from mmengine.runner import Runner

    from srfer_plugin.fer_pretrain import train_fer

    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class={'train': 2, 'val': 1, 'test': 1})

    def failing_test(self):
        raise RuntimeError('the test failed')

    monkeypatch.setattr(Runner, 'test', failing_test)
    with pytest.raises(RuntimeError, match='the test failed'):
        train_fer(TINY_CONFIG, max_epochs=1, **_options(tmp_path, root))
    final = torch.load(str(tmp_path / 'work' / 'fer_final.pth'), map_location='cpu', weights_only=True)
    assert final['meta']['epoch'] == 1 and 'head.fc.weight' in final['state_dict']
    assert not (tmp_path / 'work' / 'fer_test_accuracy.json').exists(), 'no summary of an untested run'


# --- classes: the dataset's must be the head's -------------------------------------------------------------------


def _refused_by_train_fer(argv: list[str], monkeypatch, capsys) -> str:
    """Run ``srfer train-fer`` with the Runner refused; return its one error line."""
    from srfer_plugin.tools.train_fer import main

    _no_runner(monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


@pytest.mark.parametrize('num_names', [8, 4])
def test_a_class_count_other_than_the_heads_is_refused_before_training(tmp_path, monkeypatch, capsys, cpu_env,
                                                                         num_names):  # fmt: skip
    """8 classes would crash at the first step (mmpretrain's bare AssertionError); 4 would train a 7-way head."""
    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class=SPLITS)
    names = [*TINY_CLASSES, 'fear', 'disgust', 'angry', 'contempt'][:num_names]
    classes_file = os.path.join(root, 'classes.txt')
    with open(classes_file, 'w', encoding='utf-8') as f:
        f.writelines(f'{name}\n' for name in names)
    work = str(tmp_path / 'work')
    argv = [TINY_CONFIG, '--data-root', root, '--work-dir', work, '--device', 'cpu', '--max-epochs', '1']
    line = _refused_by_train_fer(argv, monkeypatch, capsys)
    assert line.startswith(f'error: train split: the dataset has {num_names} classes ({classes_file}: neutral, ')
    assert f"the config's model.head.num_classes is 7 ({TINY_CONFIG})" in line
    assert f'pass --cfg-options model.head.num_classes={num_names}' in line and 'nothing was trained' in line
    assert not os.path.exists(work)

    # the fix the message names passes the check: the Runner is built next
    with pytest.raises(AssertionError, match='the Runner was built'):
        from srfer_plugin.tools.train_fer import main

        main([*argv, '--cfg-options', f'model.head.num_classes={num_names}'])
    assert not os.path.exists(work)


def test_a_label_outside_the_head_is_refused_before_training(tmp_path, monkeypatch, capsys, cpu_env):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class=SPLITS)
    meta = os.path.join(root, 'meta_info_val.txt')
    with open(meta, 'a', encoding='utf-8') as f:
        f.write('val/happy/happy_000.png 4\n')  # a fifth class in a 4-class dataset
    work = str(tmp_path / 'work')
    argv = [TINY_CONFIG, '--data-root', root, '--work-dir', work, '--device', 'cpu', '--max-epochs', '1']
    line = _refused_by_train_fer([*argv, '--cfg-options', 'model.head.num_classes=4'], monkeypatch, capsys)
    assert line.startswith(f'error: val split: {meta} holds label 4, outside [0, 4): ')
    assert "the config's model.head.num_classes is 4" in line
    assert f'fix the labels (0 to 3: {os.path.join(root, "classes.txt")})' in line
    assert not os.path.exists(work)


# --- prepare-dataset: an image listed twice --------------------------------------------------------------------


def _image(path: str, value: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = np.random.default_rng(value).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    assert cv2.imwrite(path, img)


def test_rafdb_image_listed_twice(tmp_path):
    root = tmp_path / 'basic'
    lines = [
        'train_00001.jpg 5',
        'test_00001.jpg 2',
        'train_00002.jpg 4',
        'test_00001.jpg 4',  # the same face as line 2, another class
        'train_00002.jpg 4',  # an exact repeat of line 3
        'test_00002.jpg 7',
    ]
    for i, name in enumerate(('train_00001', 'train_00002', 'test_00001', 'test_00002')):
        _image(str(root / 'Image' / 'aligned' / f'{name}_aligned.jpg'), i)
    (root / 'EmoLabel').mkdir()
    (root / 'EmoLabel' / 'list_patition_label.txt').write_text('\n'.join(lines) + '\n')
    dst = str(tmp_path / 'out')
    result = prepare_dataset('rafdb', str(root), dst, size=8, progress=False)
    written = [
        rel for split in ('train', 'test') for rel, _ in read_meta_info(os.path.join(dst, f'meta_info_{split}.txt'))
    ]
    assert sorted(written) == [
        'test/neutral/test_00002.png',
        'train/happy/train_00002.png',
        'train/sad/train_00001.png',
    ]
    bad = dict(result.report.bad)
    conflict = (
        'list_patition_label.txt:line 2 (test_00001.jpg): fear; list_patition_label.txt:line 4 (test_00001.jpg): happy'
    )
    for line in (2, 4):
        assert bad[f'list_patition_label.txt:line {line} (test_00001.jpg)'] == (
            f'conflicting labels for one image ({conflict}); the image is left out'
        )
    assert bad['list_patition_label.txt:line 5 (train_00002.jpg)'] == (
        'duplicate of list_patition_label.txt:line 3 (train_00002.jpg) (same image, same label): '
        'the image is written once'
    )
    assert len(result.report.bad) == 3
    with open(os.path.join(dst, 'prepare_report.json'), encoding='utf-8') as f:
        assert len(json.load(f)['bad_rows']) == 3


def test_affectnet_csv_image_listed_twice(tmp_path):
    import csv

    src = tmp_path / 'AffectNet'
    for i, rel in enumerate(('1/a.jpg', '1/b.jpg')):
        _image(str(src / 'Manually_Annotated_Images' / rel), i)
    head = ['subDirectory_filePath', 'expression']
    lists = src / 'Manually_Annotated_file_lists'
    lists.mkdir()
    with open(lists / 'training.csv', 'w', newline='', encoding='utf-8') as f:
        csv.writer(f).writerows([head, ['1/a.jpg', '1'], ['1/b.jpg', '0']])
    with open(lists / 'validation.csv', 'w', newline='', encoding='utf-8') as f:
        csv.writer(f).writerows([head, ['1/a.jpg', '2']])  # a training face again, as sad
    result = prepare_dataset('affectnet', str(src), str(tmp_path / 'out'), size=8, progress=False)
    assert result.total == 1 and result.counts['train']['neutral'] == 1
    reasons = dict(result.report.bad)
    assert set(reasons) == {'training.csv:line 2 (1/a.jpg)', 'validation.csv:line 2 (1/a.jpg)'}
    assert all(r.startswith('conflicting labels for one image') for r in reasons.values())


def test_a_work_dir_another_process_trains_into_is_refused(tmp_path, monkeypatch, cpu_env, capsys):
    """Two train-fer runs into one work dir would write the same checkpoints and archive each other's results."""
    import subprocess
    import sys

    from srfer_plugin.tools import train_fer as train_fer_cli

    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class=SPLITS)
    work = tmp_path / 'work'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys\nfrom srfer_plugin.utils.run_lock import acquire_folder\n'
         "acquire_folder(sys.argv[1], 'work dir')\nprint('holding', flush=True)\nsys.stdin.read()\n", str(work)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    _no_runner(monkeypatch)
    try:
        assert holder.stdout.readline().strip() == 'holding'
        argv = [TINY_CONFIG, '--work-dir', str(work), '--data-root', root, '--device', 'cpu', '--max-epochs', '1',
                '--cfg-options', f'model.head.num_classes={len(TINY_CLASSES)}']  # fmt: skip
        assert train_fer_cli.main(argv) == 2
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert 'in use by a running process' in capsys.readouterr().err
    assert not work.exists()
