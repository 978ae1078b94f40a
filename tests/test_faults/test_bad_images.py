"""Bad images (empty, truncated, not images, missing) are found when a dataset is built, never at the step that
draws them: every one is listed with its reason and the YAML key, or left out with ``bad_images: skip``."""

from __future__ import annotations

import csv
import glob
import logging
import os
import subprocess
import sys

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.data import build_dataset
from eval_fixtures import run_srfer_test, tiny_test_setup
from fer_fixtures import make_tiny_fer_dataset, model_options, tiny_train_options, write_options
from training_runs import run_training

from srfer_plugin.data import image_check
from srfer_plugin.data.bad_images import BadImagesError, MissingImagesError
from srfer_plugin.data.fer_layout import read_meta_info
from srfer_plugin.data.image_check import check_disk_images, inspect_image_bytes, jpeg_is_truncated, srfer_cache_dir

# Three train images after the first (meta_info order: 3 neutral, 3 happy, 3 sad, 3 surprise).
EMPTY = 'train/happy/happy_001.png'
TRUNCATED = 'train/sad/sad_002.png'
NOT_AN_IMAGE = 'train/surprise/surprise_000.png'
BAD_VAL = 'val/happy/happy_001.png'


def make_empty(path: str) -> None:
    open(path, 'wb').close()


def truncate(path: str) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[: len(data) // 2])


def write_text(path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        f.write('this is a text file renamed .png\n')


def spoiled_dataset(root: str) -> str:
    """A tiny dataset whose train split holds an empty file, a truncated PNG and a text file at later positions."""
    make_tiny_fer_dataset(root)
    make_empty(os.path.join(root, EMPTY))
    truncate(os.path.join(root, TRUNCATED))
    write_text(os.path.join(root, NOT_AN_IMAGE))
    return root


def dataset_opt(root: str, split: str = 'train', **overrides) -> dict:
    opt = {
        'name': f'tiny_{split}',
        'type': 'PairedFERDataset',
        'phase': split,
        'scale': 4,
        'dataroot_gt': root,
        'meta_info_file': os.path.join(root, f'meta_info_{split}.txt'),
        'io_backend': {'type': 'disk'},
    }
    opt.update(overrides)
    return opt


def build_train_val(opt: dict):
    """Build the train and val loaders the way ``srfer-train`` does (BasicSR's create_train_val_dataloader)."""
    import basicsr.train

    os.makedirs(opt['path']['log'], exist_ok=True)
    return basicsr.train.create_train_val_dataloader(opt, logging.getLogger('test_bad_images'))


def test_default_stops_at_build_listing_every_bad_image_reason_and_yaml_key(tmp_path):
    root = spoiled_dataset(str(tmp_path / 'data'))
    opt = model_options(root, str(tmp_path / 'exp'))
    with pytest.raises(BadImagesError) as caught:
        build_train_val(opt)
    message = str(caught.value)
    assert message.startswith('datasets.train (name: tiny_fer_train): 3 of 12 image(s) cannot be used')
    assert 'datasets.train.bad_images: skip' in message
    for rel_path, reason in (
        (EMPTY, 'empty file (0 bytes)'),
        (TRUNCATED, 'corrupt or truncated PNG'),
        (NOT_AN_IMAGE, 'not an image'),
    ):
        assert any(os.path.join(root, rel_path) in line and reason in line for line in message.splitlines()), (
            rel_path,
            message,
        )
    list_file = os.path.join(str(tmp_path / 'exp'), 'bad_images_train.txt')
    assert f'Full list: {list_file}' in message
    with open(list_file, encoding='utf-8') as f:
        listed = [line.split('\t')[0] for line in f if not line.startswith('#')]
    assert listed == [os.path.join(root, p) for p in (EMPTY, TRUNCATED, NOT_AN_IMAGE)]


def test_val_set_key_is_named_and_lr_images_are_checked_too(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    lq_root = str(tmp_path / 'lq')
    for rel_path, _ in read_meta_info(os.path.join(root, 'meta_info_val.txt')):
        os.makedirs(os.path.join(lq_root, os.path.dirname(rel_path)), exist_ok=True)
        img = cv2.imread(os.path.join(root, rel_path))
        cv2.imwrite(os.path.join(lq_root, rel_path), cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA))
    truncate(os.path.join(lq_root, BAD_VAL))
    opt = model_options(root, str(tmp_path / 'exp'))
    opt['datasets']['val']['dataroot_lq'] = lq_root
    with pytest.raises(BadImagesError, match=r'datasets\.val \(name: tiny_fer_val\): 1 of 8') as caught:
        build_train_val(opt)
    assert f"unreadable image '{os.path.join(lq_root, BAD_VAL)}': corrupt or truncated PNG" in str(caught.value)


def test_skip_trains_on_the_rest_and_validation_counts_what_it_left_out(tmp_path):
    root = spoiled_dataset(str(tmp_path / 'data'))
    make_empty(os.path.join(root, BAD_VAL))
    opt = tiny_train_options(root, name='bad_images_skip')
    for phase in ('train', 'val'):
        opt['datasets'][phase]['bad_images'] = 'skip'
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    proc = run_training(opt_path, str(tmp_path))
    exp = tmp_path / 'experiments' / 'bad_images_skip'
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    train_line = 'datasets.train (name: tiny_fer_train): 3 of 12 image(s) cannot be used; left out 3, using the other 9'
    assert train_line in log
    assert 'datasets.val (name: tiny_fer_val): 1 of 8 image(s) cannot be used; left out 1, using the other 7' in log
    assert f'Full list: {exp / "bad_images_train.txt"}' in log
    assert 'Number of train images: 9' in log and 'Number of val images/folders in tiny_fer_val: 7' in log
    assert log.count('Validation tiny_fer_val') >= 2, proc.stdout[-2000:]  # val_freq 2, total_iter 4
    assert (exp / 'models' / 'net_g_latest.pth').is_file()
    assert len((exp / 'bad_images_train.txt').read_text().splitlines()) == 2 + 3
    assert os.path.join(root, BAD_VAL) in (exp / 'bad_images_val.txt').read_text()


def two_test_sets(tmp_path, mode: str) -> str:
    """Tiny test options with two test sets; the first (test_1) holds an empty image. Returns the options path."""
    bad_root = make_tiny_fer_dataset(str(tmp_path / 'bad'))
    make_empty(os.path.join(bad_root, BAD_VAL))
    clean_root = make_tiny_fer_dataset(str(tmp_path / 'clean'), seed=1)
    second = {
        'name': 'tiny_fer_clean',
        'dataroot_gt': clean_root,
        'meta_info_file': os.path.join(clean_root, 'meta_info_val.txt'),
    }
    opt_path, _ = tiny_test_setup(str(tmp_path), bad_root, extra_datasets={'test_2': second})
    import yaml

    with open(opt_path, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['val']['save_img'] = False
    for ds in opt['datasets'].values():
        ds['bad_images'] = mode
    return write_options(opt, opt_path)


def test_srfer_test_skip_mode_tests_every_set_and_writes_every_summary(tmp_path):
    results = run_srfer_test(two_test_sets(tmp_path, 'skip'), str(tmp_path))
    with open(os.path.join(results, 'summary.csv'), newline='') as f:
        rows = {row['dataset']: row for row in csv.DictReader(f)}
    assert set(rows) == {'tiny_fer_val', 'tiny_fer_clean'}
    assert rows['tiny_fer_val']['num_images'] == '7' and rows['tiny_fer_clean']['num_images'] == '8'
    for name in rows:
        assert os.path.isfile(os.path.join(results, 'fer', name, 'per_class.csv'))
    (log_file,) = glob.glob(os.path.join(results, 'test_*.log'))
    with open(log_file, encoding='utf-8') as f:
        log = f.read()
    assert 'datasets.test_1 (name: tiny_fer_val): 1 of 8 image(s) cannot be used; left out 1' in log
    assert os.path.isfile(os.path.join(results, 'bad_images_test_1.txt'))


def test_srfer_test_default_mode_fails_before_testing_naming_the_file(tmp_path):
    opt_path = two_test_sets(tmp_path, 'error')
    proc = subprocess.run(
        [sys.executable, '-m', 'srfer_plugin.test', '-opt', opt_path],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=400,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"unreadable image '{os.path.join(str(tmp_path / 'bad'), BAD_VAL)}': empty file (0 bytes)" in output
    assert 'datasets.test_1.bad_images: skip' in output
    assert 'Testing tiny_fer_val' not in output, 'the error must come before any set is tested'


def test_second_build_decodes_nothing_and_changed_files_are_checked_again(tmp_path, monkeypatch):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    decoded: list[int] = []
    real_inspect = image_check.inspect_image_bytes

    def counting_inspect(data: bytes):
        decoded.append(len(data))
        return real_inspect(data)

    monkeypatch.setattr(image_check, 'inspect_image_bytes', counting_inspect)
    assert len(build_dataset(dataset_opt(root))) == 12 and len(decoded) == 12
    decoded.clear()
    assert len(build_dataset(dataset_opt(root))) == 12 and decoded == []

    touched = os.path.join(root, 'train/neutral/neutral_002.png')
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same bytes, new mtime
    build_dataset(dataset_opt(root))
    assert len(decoded) == 1
    decoded.clear()
    truncate(os.path.join(root, TRUNCATED))  # new size: checked again, and now found bad
    with pytest.raises(BadImagesError, match='sad_002.png'):
        build_dataset(dataset_opt(root))
    assert len(decoded) == 1
    cache_files = glob.glob(os.path.join(srfer_cache_dir(), 'image_checks', '*.json'))
    assert cache_files and not any(name.startswith(root) for name in cache_files), 'the cache is not in the dataset'


def test_unwritable_cache_only_warns(tmp_path, monkeypatch):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class={'train': 1})
    not_a_folder = tmp_path / 'cache_is_a_file'
    not_a_folder.write_text('')
    monkeypatch.setenv('SRFER_CACHE_DIR', str(not_a_folder))
    with pytest.warns(UserWarning, match='cannot write the image check cache'):
        assert len(build_dataset(dataset_opt(root))) == 4


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('SRFER_CACHE_DIR', str(tmp_path / 'own'))
    assert srfer_cache_dir() == str(tmp_path / 'own')
    monkeypatch.delenv('SRFER_CACHE_DIR')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert srfer_cache_dir() == str(tmp_path / 'xdg' / 'srfer_plugin')
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert srfer_cache_dir() == str(tmp_path / 'home' / '.cache' / 'srfer_plugin')


def test_truncated_jpeg_is_caught_even_where_opencv_decodes_it(monkeypatch):
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    data = cv2.imencode('.jpg', img)[1].tobytes()
    assert inspect_image_bytes(data).ok and inspect_image_bytes(data + b'camera trailer\x00').ok
    assert not jpeg_is_truncated(data) and jpeg_is_truncated(data[:-2]) and jpeg_is_truncated(data[: len(data) // 2])
    # OpenCV 4.x (e.g. 4.10) returns a grey-filled image for a truncated baseline JPEG instead of None.
    monkeypatch.setattr(image_check.cv2, 'imdecode', lambda buf, flags: np.zeros((32, 32, 3), np.uint8))
    assert inspect_image_bytes(data[: len(data) // 2]).problem.startswith('truncated JPEG')


def test_skip_leaves_out_missing_and_bad_images_and_all_bad_is_an_error(tmp_path):
    root = spoiled_dataset(str(tmp_path / 'data'))
    os.remove(os.path.join(root, 'train/neutral/neutral_001.png'))
    with pytest.raises(MissingImagesError, match=r'missing .*neutral_001\.png.*: file is missing'):
        build_dataset(dataset_opt(root))
    ds = build_dataset(dataset_opt(root, bad_images='skip'))
    assert len(ds) == 8 and len(ds.left_out) == 4 and len(ds.labels) == 8
    assert {os.path.basename(b.path) for b in ds.left_out} == {
        'neutral_001.png',
        'happy_001.png',
        'sad_002.png',
        'surprise_000.png',
    }
    for index in range(len(ds)):
        assert ds[index]['gt'].shape == (3, 32, 32)
    for rel_path, _ in read_meta_info(os.path.join(root, 'meta_info_train.txt')):
        if os.path.isfile(os.path.join(root, rel_path)):
            make_empty(os.path.join(root, rel_path))
    with pytest.raises(ValueError, match='none of its 12 image'):
        build_dataset(dataset_opt(root, bad_images='skip'))
    with pytest.raises(ValueError, match=r"bad_images: 'ignore' is not one of \['error', 'skip'\]"):
        build_dataset(dataset_opt(root, bad_images='ignore'))


def test_lmdb_bad_and_missing_keys_are_listed_and_cached_by_the_data_file(tmp_path, monkeypatch):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    items = read_meta_info(os.path.join(root, 'meta_info_train.txt'))
    lmdb_path = str(tmp_path / 'train.lmdb')
    env = lmdb.open(lmdb_path, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for rel_path, _ in items:
            if rel_path == EMPTY:
                continue  # missing key
            with open(os.path.join(root, rel_path), 'rb') as f:
                data = f.read()
            if rel_path == TRUNCATED:
                data = data[: len(data) // 2]
            txn.put(os.path.splitext(rel_path)[0].encode(), data)
    env.close()
    opt = dataset_opt(lmdb_path, meta_info_file=os.path.join(root, 'meta_info_train.txt'), io_backend={'type': 'lmdb'})
    with pytest.raises(MissingImagesError) as caught:
        build_dataset(opt)
    message = str(caught.value)
    assert f"{os.path.join(lmdb_path, 'train/happy/happy_001')}': key is missing from the lmdb" in message
    assert f"{os.path.join(lmdb_path, 'train/sad/sad_002')}': corrupt or truncated PNG" in message
    decoded: list[int] = []
    real_inspect = image_check.inspect_image_bytes
    monkeypatch.setattr(image_check, 'inspect_image_bytes', lambda data: decoded.append(1) or real_inspect(data))
    ds = build_dataset({**opt, 'bad_images': 'skip'})
    assert len(ds) == 10 and decoded == [] and ds[3]['gt'].shape == (3, 32, 32)


def test_sizes_of_every_image_are_checked_not_only_the_first(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    cv2.imwrite(os.path.join(root, NOT_AN_IMAGE), np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(ValueError, match=r'surprise_000\.png.* is 30x30, not divisible by scale 4'):
        build_dataset(dataset_opt(root))


def test_check_reports_each_path_in_order(tmp_path):
    root = spoiled_dataset(str(tmp_path / 'data'))
    rel_paths = [p for p, _ in read_meta_info(os.path.join(root, 'meta_info_train.txt'))]
    checks = check_disk_images(root, rel_paths + ['train/none.png'])
    bad = {rel: c.problem for rel, c in zip(rel_paths + ['train/none.png'], checks) if not c.ok}
    assert set(bad) == {EMPTY, TRUNCATED, NOT_AN_IMAGE, 'train/none.png'}
    assert checks[-1].missing and all((c.height, c.width) == (32, 32) for c in checks if c.ok)


def test_batched_set_of_mixed_sizes_is_refused_at_build_listing_the_odd_files(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    odd = [TRUNCATED, NOT_AN_IMAGE]
    for rel_path in odd:  # 48 divides by scale 4: only the batch could fail on them, at a random step
        cv2.imwrite(os.path.join(root, rel_path), np.zeros((48, 48, 3), np.uint8))
    opt = model_options(root, str(tmp_path / 'exp'))  # train: batch_size_per_gpu 4, no gt_size
    with pytest.raises(ValueError) as caught:
        build_train_val(opt)
    message = str(caught.value)
    assert message.startswith('datasets.train (name: tiny_fer_train): 2 of 12 HR image(s) are not 32x32'), message
    assert 'datasets.train.gt_size' in message and 'datasets.train.batch_size_per_gpu: 4' in message
    for rel_path in odd:
        assert f"{os.path.join(root, rel_path)}' is 48x48" in message, message
    # A size is not a bad image: skip does not hide it.
    with pytest.raises(ValueError, match=r'2 of 12 HR image\(s\) are not 32x32'):
        build_dataset(dataset_opt(root, batch_size_per_gpu=2, bad_images='skip'))
    assert len(build_dataset(dataset_opt(root, batch_size_per_gpu=2, gt_size=32))) == 12
    assert len(build_dataset(dataset_opt(root, batch_size_per_gpu=1))) == 12  # never stacked


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='named pipes are POSIX only')
def test_fifo_named_like_an_image_is_a_bad_image_not_a_hang(tmp_path):
    import threading

    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    fifo = os.path.join(root, NOT_AN_IMAGE)
    os.remove(fifo)
    os.mkfifo(fifo)
    outcome: dict = {}

    def build(**overrides) -> None:
        try:
            outcome['dataset'] = build_dataset(dataset_opt(root, **overrides))
        except Exception as err:  # noqa: BLE001 (inspected below)
            outcome['error'] = err

    for overrides in ({}, {'bad_images': 'skip'}):
        outcome.clear()
        worker = threading.Thread(target=build, kwargs=overrides, daemon=True)
        worker.start()
        worker.join(timeout=120)
        if worker.is_alive():  # a reader is blocked in open(): a writer that closes at once lets it go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(timeout=30)
            pytest.fail('building the dataset hung on the FIFO')
        if overrides:
            assert len(outcome['dataset']) == 11 and [b.path for b in outcome['dataset'].left_out] == [fifo]
        else:
            assert isinstance(outcome.get('error'), BadImagesError), outcome
            assert f'unreadable image {fifo!r}: not a regular file: a FIFO' in str(outcome['error'])


def test_image_rewritten_in_place_with_its_mtime_restored_is_checked_again(tmp_path, monkeypatch):
    root = make_tiny_fer_dataset(str(tmp_path / 'data'))
    assert len(build_dataset(dataset_opt(root))) == 12  # every verdict cached
    decoded: list[int] = []
    real_inspect = image_check.inspect_image_bytes
    monkeypatch.setattr(image_check, 'inspect_image_bytes', lambda data: decoded.append(1) or real_inspect(data))

    path = os.path.join(root, TRUNCATED)
    st = os.stat(path)
    with open(path, 'r+b') as f:  # corrupted in place, same size, then the mtime put back (cp -p, rsync -a, tar x)
        f.write(b'\0' * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)

    with pytest.raises(BadImagesError, match=r'sad_002\.png.*not an image'):
        build_dataset(dataset_opt(root))
    assert len(decoded) == 1  # the other 11 still come from the cache
