"""``scripts/prepare_dataset.py`` never loses data: bad --src/--dst pairs, failed, interrupted and killed runs."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fer_fixtures import REPO_ROOT

from srfer_plugin.converters import PrepareError, ReaderOptions, prepare_dataset
from srfer_plugin.data.fer_layout import read_meta_info

SIZE = 8
SCRIPT = os.path.join(REPO_ROOT, 'scripts', 'prepare_dataset.py')


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(value).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    buf.tofile(str(path))


def _faces(root: Path, splits: tuple[str, ...] = ('train', 'val', 'test'), garbage: bool = False) -> str:
    """An imagefolder source: ``root/<split>/<class>/<n>.png`` (2 classes, 2 images each); garbage bytes if asked."""
    n = 0
    for split in splits:
        for folder in ('angry', 'happy'):
            for _ in range(2):
                n += 1
                path = root / split / folder / f'{n}.png'
                if garbage:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b'not an image')
                else:
                    _image(path, n)
    return str(root)


def _tree_hashes(root: str | Path) -> dict[str, str]:
    """Every file, folder and link under ``root`` (relative path -> content hash, ``dir`` or link target)."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        for name in dirnames + files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = 'link:' + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = 'dir'
            else:
                out[rel] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def _leftovers(dst: str | Path, kind: str = 'partial') -> list[str]:
    """Working folders of the converter (``.<dst>.<kind>-*``) beside ``dst``."""
    dst = Path(dst)
    return sorted(p.name for p in dst.parent.iterdir() if p.name.startswith(f'.{dst.name}.{kind}-'))


def _cli():
    spec = importlib.util.spec_from_file_location('prepare_dataset_faults_cli', SCRIPT)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def _argv(src: str, dst: str, *extra: str) -> list[str]:
    return ['--format', 'imagefolder', '--src', src, '--dst', dst, '--size', str(SIZE), '--no-progress', *extra]


# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('case', ['same', 'dst_inside_src', 'src_inside_dst', 'dst_symlink_to_src'])
def test_overlapping_src_and_dst_are_refused(tmp_path, capsys, case):
    faces = tmp_path / 'faces'
    if case == 'same':
        src = dst = _faces(faces)
    elif case == 'dst_inside_src':
        src = _faces(faces)
        dst = str(faces / 'out')
    elif case == 'src_inside_dst':  # the user's class folders are dst/train/<class>: --overwrite would clear train/
        src = _faces(faces / 'train', splits=('angry_set',))
        src = str(Path(src) / 'angry_set')
        dst = str(faces)
    else:
        src = _faces(faces)
        os.symlink(src, tmp_path / 'link')
        dst = str(tmp_path / 'link')
    before = _tree_hashes(faces)

    assert _cli().main(_argv(src, dst, '--overwrite')) == 2

    err = capsys.readouterr().err
    assert src in err and dst in err, err
    assert 'nothing was written' in err
    assert _tree_hashes(faces) == before
    assert not _leftovers(dst)


def test_overlap_with_an_extra_source_path_is_refused(tmp_path):
    src = _faces(tmp_path / 'faces')
    opts = ReaderOptions(image_root=str(tmp_path / 'out' / 'images'))
    with pytest.raises(PrepareError, match='image-root'):
        prepare_dataset('imagefolder', src, str(tmp_path / 'out'), size=SIZE, options=opts, progress=False)
    assert not (tmp_path / 'out').exists()


# ---------------------------------------------------------------------------------------------------------------


def _earlier_output(tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """A source, an earlier output of it (with a user's README in it) and the hashes of that output."""
    src = _faces(tmp_path / 'faces')
    dst = str(tmp_path / 'out')
    prepare_dataset('imagefolder', src, dst, size=SIZE, progress=False)
    (Path(dst) / 'README.md').write_text('my notes on this dataset\n')
    return src, dst, _tree_hashes(dst)


def _fail_writing_meta_info(monkeypatch) -> None:
    import srfer_plugin.converters.writer as writer

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(writer, 'write_meta_info', disk_full)


def _fail_writing_lmdb(monkeypatch) -> None:
    import srfer_plugin.converters.pipeline as pipeline

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, 'Input/output error')

    monkeypatch.setattr(pipeline, 'write_lmdb', broken)


def _interrupt_after_two_images(monkeypatch) -> None:
    import srfer_plugin.converters.writer as writer

    real, calls = writer.to_square_bgr, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, 'to_square_bgr', interrupted)


@pytest.mark.parametrize(
    'fault, error',
    [
        ('corrupt_source', PrepareError),
        ('disk_full_after_images', OSError),
        ('lmdb_error', OSError),
        ('ctrl_c_mid_images', KeyboardInterrupt),
    ],
)
def test_failed_overwrite_keeps_the_earlier_output(tmp_path, monkeypatch, fault, error):
    src, dst, before = _earlier_output(tmp_path)
    if fault == 'corrupt_source':
        src = _faces(tmp_path / 'broken', garbage=True)  # every image unreadable: fails after reading the source
    elif fault == 'disk_full_after_images':
        _fail_writing_meta_info(monkeypatch)
    elif fault == 'lmdb_error':
        _fail_writing_lmdb(monkeypatch)
    else:
        _interrupt_after_two_images(monkeypatch)

    with pytest.raises(error):
        prepare_dataset('imagefolder', src, dst, size=SIZE + 4, lmdb=True, overwrite=True, progress=False)

    assert _tree_hashes(dst) == before
    assert not _leftovers(dst) and not _leftovers(dst, 'replaced')


def test_rename_failing_mid_swap_rolls_back(tmp_path, monkeypatch):
    """The swap itself fails after the old parts went aside and one new part went in: all is moved back."""
    src, dst, before = _earlier_output(tmp_path)
    real_rename, moved_in = os.rename, []

    def flaky_rename(source, target):
        if '.out.partial-' in str(source) and str(target).startswith(dst + os.sep):
            moved_in.append(target)
            if len(moved_in) == 2:
                raise OSError(errno.EIO, 'Input/output error')
        real_rename(source, target)

    monkeypatch.setattr(os, 'rename', flaky_rename)
    with pytest.raises(OSError, match='Input/output'):
        prepare_dataset('imagefolder', src, dst, size=SIZE + 4, overwrite=True, progress=False)

    assert len(moved_in) == 2
    assert _tree_hashes(dst) == before
    assert not _leftovers(dst) and not _leftovers(dst, 'replaced')


# ---------------------------------------------------------------------------------------------------------------

_SLOW_RUN = """
import os, sys, time, importlib.util
import srfer_plugin.converters.writer as writer

real = writer.to_square_bgr

def slow(*args, **kwargs):
    open({ready!r}, 'w').close()  # an image was written into the new output: the parent kills us now
    time.sleep(60)
    return real(*args, **kwargs)

writer.to_square_bgr = slow
spec = importlib.util.spec_from_file_location('cli', {script!r})
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)
sys.exit(cli.main({argv!r}))
"""


def test_killed_overwrite_keeps_the_earlier_output_and_a_rerun_succeeds(tmp_path):
    src, dst, before = _earlier_output(tmp_path)
    ready = str(tmp_path / 'ready')
    code = _SLOW_RUN.format(ready=ready, script=SCRIPT, argv=_argv(src, dst, '--overwrite', '--split', 'all:test'))
    proc = subprocess.Popen([sys.executable, '-c', textwrap.dedent(code)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not os.path.exists(ready) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(ready), proc.stderr.read() if proc.poll() is not None else 'timed out'
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    assert _tree_hashes(dst) == before  # the killed run touched nothing of the earlier output
    assert _leftovers(dst), 'the killed run should have left its partial folder'

    result = prepare_dataset('imagefolder', src, dst, size=SIZE, split='all:test', overwrite=True, progress=False)

    assert result.total == 12 and set(result.counts) == {'test'}
    assert not _leftovers(dst) and not _leftovers(dst, 'replaced')
    assert sorted(os.listdir(dst)) == ['README.md', 'classes.txt', 'meta_info_test.txt', 'prepare_report.json', 'test']
    assert len(read_meta_info(os.path.join(dst, 'meta_info_test.txt'))) == 12


def test_stale_partial_folder_of_a_dead_run_is_cleaned(tmp_path):
    src, dst, _ = _earlier_output(tmp_path)
    stale = tmp_path / '.out.partial-999999-deadbeef'
    _faces(stale, splits=('train',))
    (stale / 'classes.txt').write_text('junk\n')

    result = prepare_dataset('imagefolder', src, dst, size=SIZE, overwrite=True, progress=False)

    assert result.total == 12
    assert not stale.exists()


def test_a_running_conversion_owns_its_dst(tmp_path):
    src, dst, before = _earlier_output(tmp_path)
    ready = tmp_path / 'locked'
    holder = textwrap.dedent(f"""
        import fcntl, time
        f = open({str(tmp_path / '.out.lock')!r}, 'a+')
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write('pid 1234: another prepare_dataset.py')
        f.flush()
        open({str(ready)!r}, 'w').close()
        time.sleep(60)
    """)
    if sys.platform == 'win32':
        pytest.skip('flock holder script is POSIX only')
    proc = subprocess.Popen([sys.executable, '-c', holder])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists()
        with pytest.raises(PrepareError, match='in use'):
            prepare_dataset('imagefolder', src, dst, size=SIZE, overwrite=True, progress=False)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert _tree_hashes(dst) == before


# ---------------------------------------------------------------------------------------------------------------


def test_user_files_in_dst_survive_overwrite(tmp_path):
    src, dst, _ = _earlier_output(tmp_path)
    (Path(dst) / 'notes').mkdir()
    (Path(dst) / 'notes' / 'todo.txt').write_text('relabel 3 images\n')
    user = {k: v for k, v in _tree_hashes(dst).items() if k.startswith(('README', 'notes'))}

    result = prepare_dataset('imagefolder', src, dst, size=SIZE, split='all:test', overwrite=True, progress=False)

    assert result.total == 12
    assert {k: v for k, v in _tree_hashes(dst).items() if k.startswith(('README', 'notes'))} == user
    # The earlier output is gone as a whole (its train/val splits too), the new one is complete.
    assert sorted(os.listdir(dst)) == [
        'README.md',
        'classes.txt',
        'meta_info_test.txt',
        'notes',
        'prepare_report.json',
        'test',
    ]


def test_a_user_folder_named_like_a_new_split_is_never_merged_into(tmp_path):
    src = _faces(tmp_path / 'faces')
    dst = tmp_path / 'out'
    (dst / 'holdout').mkdir(parents=True)
    (dst / 'holdout' / 'mine.txt').write_text('my own files\n')
    split = 'random:train=0.5,holdout=0.5'

    # Merging the new split into the user's folder would make it the converter's: a later --overwrite deletes it.
    for overwrite in (False, True):
        with pytest.raises(PrepareError, match='holdout'):
            prepare_dataset('imagefolder', src, str(dst), size=SIZE, split=split, overwrite=overwrite, progress=False)

    assert sorted(os.listdir(dst)) == ['holdout'] and os.listdir(dst / 'holdout') == ['mine.txt']
    assert not _leftovers(dst)


def test_read_only_parent_builds_inside_dst(tmp_path, monkeypatch):
    """A --dst whose parent is not writable (a mounted volume): the working folder is a dot folder inside it."""
    src, dst, before = _earlier_output(tmp_path)
    writable = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: path != str(tmp_path) and writable(path, mode))
    with monkeypatch.context() as patch:
        _fail_writing_meta_info(patch)
        with pytest.raises(OSError):
            prepare_dataset('imagefolder', src, dst, size=SIZE, overwrite=True, progress=False)
    assert {k: v for k, v in _tree_hashes(dst).items() if k != '.out.lock'} == before  # the lock file lives in dst

    result = prepare_dataset('imagefolder', src, dst, size=SIZE, split='all:test', overwrite=True, progress=False)

    assert result.total == 12
    assert sorted(os.listdir(dst)) == [
        '.out.lock',
        'README.md',
        'classes.txt',
        'meta_info_test.txt',
        'prepare_report.json',
        'test',
    ]
    assert not _leftovers(dst)  # nor beside it


# ---------------------------------------------------------------------------------------------------------------
# A folder is the converter's only if a conversion wrote it; files it did not write are never deleted.


def test_a_user_folder_named_like_a_split_this_run_does_not_write_is_kept(tmp_path, capsys):
    src = _faces(tmp_path / 'faces')
    dst = tmp_path / 'out'
    (dst / 'test').mkdir(parents=True)
    (dst / 'test' / 'notes.txt').write_text('notes\n')

    # Not a prepared dataset (no meta_info_test.txt, no report): nothing to refuse, and --overwrite keeps it.
    for extra in ((), ('--overwrite',)):
        assert _cli().main(_argv(src, str(dst), '--split', 'all:train', *extra)) == 0, capsys.readouterr().err
        assert (dst / 'test' / 'notes.txt').read_text() == 'notes\n'
        assert sorted(os.listdir(dst / 'test')) == ['notes.txt']
        assert len(read_meta_info(str(dst / 'meta_info_train.txt'))) == 12


def test_a_user_folder_named_like_the_split_being_written_is_refused(tmp_path, capsys):
    src = _faces(tmp_path / 'faces')
    dst = tmp_path / 'out'
    (dst / 'train').mkdir(parents=True)
    (dst / 'train' / 'mystuff.txt').write_text('mine\n')
    before = _tree_hashes(dst)

    for extra in ((), ('--overwrite',)):
        assert _cli().main(_argv(src, str(dst), '--split', 'all:train', *extra)) == 2
        err = capsys.readouterr().err
        assert str(dst / 'train') in err and 'no conversion wrote' in err, err
        assert _tree_hashes(dst) == before
    assert not _leftovers(dst)


def _add_by_hand(dst: Path, case: str) -> list[str]:
    """Put files the earlier conversion did not write into its folders; returns their paths relative to ``dst``."""
    if case == 'notes_in_split':
        (dst / 'train' / 'mystuff.txt').write_text('mine\n')
        return ['train/mystuff.txt']
    if case == 'image_added_by_hand':
        _image(dst / 'test' / 'happy' / 'my_face.png', 99)
        return ['test/happy/my_face.png']
    if case == 'meta_info_line_removed':  # the user dropped an image from the list; the file is still there
        lines = (dst / 'meta_info_val.txt').read_text().splitlines(keepends=True)
        (dst / 'meta_info_val.txt').write_text(''.join(lines[1:]))
        return [lines[0].rsplit(maxsplit=1)[0]]
    if case == 'meta_info_missing':  # the report still lists test/, but nothing says which files are the converter's
        (dst / 'meta_info_test.txt').unlink()
        return sorted(str(p.relative_to(dst)).replace(os.sep, '/') for p in (dst / 'test').rglob('*') if p.is_file())
    (dst / 'lmdb' / 'notes.txt').write_text('mine\n')  # lmdb_notes
    return ['lmdb/notes.txt']


@pytest.mark.parametrize(
    'case', ['notes_in_split', 'image_added_by_hand', 'meta_info_line_removed', 'meta_info_missing', 'lmdb_notes']
)
def test_overwrite_refuses_to_delete_files_the_earlier_conversion_did_not_write(tmp_path, case):
    src = _faces(tmp_path / 'faces')
    dst = tmp_path / 'out'
    prepare_dataset('imagefolder', src, str(dst), size=SIZE, lmdb=case == 'lmdb_notes', progress=False)
    extra = _add_by_hand(dst, case)
    before = _tree_hashes(dst)

    with pytest.raises(PrepareError) as caught:
        prepare_dataset('imagefolder', src, str(dst), size=SIZE, split='all:test', overwrite=True, progress=False)

    message = str(caught.value)
    assert f'{len(extra)} file(s)' in message and 'nothing was written or deleted' in message, message
    for rel in extra:
        assert rel in message, message
    if case == 'meta_info_missing':
        assert 'meta_info_test.txt is missing' in message
    assert _tree_hashes(dst) == before
    assert not _leftovers(dst) and not _leftovers(dst, 'replaced')


def test_a_file_added_while_converting_stops_the_swap(tmp_path, monkeypatch):
    import srfer_plugin.converters.pipeline as pipeline

    src, dst, _ = _earlier_output(tmp_path)
    real_write = pipeline.write_dataset

    def write_while_user_adds_a_file(*args, **kwargs):
        (Path(dst) / 'train' / 'late.txt').write_text('added during the run\n')
        return real_write(*args, **kwargs)

    monkeypatch.setattr(pipeline, 'write_dataset', write_while_user_adds_a_file)
    with pytest.raises(PrepareError, match=r'(?s)1 file\(s\).*train/late\.txt.*nothing was written or deleted'):
        prepare_dataset('imagefolder', src, dst, size=SIZE + 4, overwrite=True, progress=False)
    assert (Path(dst) / 'train' / 'late.txt').read_text() == 'added during the run\n'
    assert len(read_meta_info(os.path.join(dst, 'meta_info_train.txt'))) == 4
    assert cv2.imread(os.path.join(dst, 'train', 'angry', '1.png')).shape[:2] == (SIZE, SIZE)  # the earlier output
    assert not _leftovers(dst) and not _leftovers(dst, 'replaced')


# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('spec', ['random:0.1,0.1', 'random:0.5,0.6', 'subject:train=0.5,val=0.2,test=0.2'])
def test_split_fractions_that_do_not_sum_to_one_are_refused(tmp_path, capsys, spec):
    src = _faces(tmp_path / 'faces')
    dst = tmp_path / 'out'

    assert _cli().main(_argv(src, str(dst), '--split', spec)) == 2

    err = capsys.readouterr().err
    assert f'--split {spec!r}' in err and 'not 1' in err, err
    assert not dst.exists()
