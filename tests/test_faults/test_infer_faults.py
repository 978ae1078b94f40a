"""srfer-infer under faults: odd file names, formula-like names, a crash mid-run, an earlier run, a second process,
globs whose ``..`` would lead outside the output folder, FIFOs among the inputs."""

from __future__ import annotations

import csv
import glob
import os
import signal
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from eval_fixtures import tiny_test_setup
from fer_fixtures import TINY_CLASSES

from srfer_plugin import infer
from srfer_plugin.predictor import SRFERPredictor
from srfer_plugin.utils import run_lock
from srfer_plugin.utils.inference_outputs import inert_cell, printable_text, sr_output_name, write_new_file

CORRUPT_PNG = b'\x89PNG\r\n\x1a\n not really'


@pytest.fixture(scope='module')
def opt_path(tiny_fer_root, tmp_path_factory) -> str:
    """Tiny CPU options with random SR and FER weights."""
    return tiny_test_setup(str(tmp_path_factory.mktemp('infer_faults')), tiny_fer_root)[0]


def _face(path: str | bytes, seed: int = 0) -> None:
    ok, buf = cv2.imencode('.png', np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert ok
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def _argv(inputs: str, out: str, opt_path: str, batch_size: int = 8) -> list[str]:
    return ['-i', inputs, '-o', out, '--opt', opt_path, '--batch-size', str(batch_size), '--no-progress']


def test_cells_are_printable_and_inert():
    assert printable_text(os.fsdecode(b'caf\xe9.png')) == 'caf\\xe9.png'
    assert printable_text('café.png') == 'café.png'
    for text in ('=1+1', '+cmd', '-2+3', '@SUM(A1)', '\tx', '\rx'):
        assert inert_cell(text) == "'" + text
    assert inert_cell('face.png') == 'face.png'


def test_non_utf8_file_name_is_written_escaped(opt_path, tmp_path, capsys):
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    _face(str(inputs / 'a.png'), 1)
    _face(str(inputs / 'b.png'), 2)
    try:
        _face(os.path.join(os.fsencode(str(inputs)), b'caf\xe9.png'), 3)
        with open(os.path.join(os.fsencode(str(inputs)), b'bad\xff.png'), 'wb') as f:
            f.write(CORRUPT_PNG)
    except (OSError, UnicodeError):
        pytest.skip('this file system does not allow file names that are not UTF-8')
    out = str(tmp_path / 'out')

    assert infer.main(_argv(str(inputs), out, opt_path)) == 0
    assert 'Processed 3 image(s)' in capsys.readouterr().out
    rows = _rows(os.path.join(out, 'predictions.csv'))
    assert [os.path.basename(r['file']) for r in rows] == ['a.png', 'b.png', 'caf\\xe9.png']
    assert rows[2]['sr_file'] == os.path.join('sr', 'caf\\xe9.png')  # the SR image's name uses the same escaping
    assert os.path.isfile(os.path.join(out, rows[2]['sr_file']))
    assert rows[2]['label'] in TINY_CLASSES
    (skipped,) = _rows(os.path.join(out, 'skipped.csv'))
    assert os.path.basename(skipped['file']) == 'bad\\xff.png'
    assert not glob.glob(os.path.join(out, '*.partial'))


def test_crash_mid_run_keeps_the_finished_rows(opt_path, tmp_path, monkeypatch):
    """Ctrl-C (or any exception the batch loop does not handle) in the 2nd batch: the 1st batch is on disk."""
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    (inputs / 'a_corrupt.png').write_bytes(CORRUPT_PNG)
    for k, name in enumerate(('b.png', 'c.png', 'd.png', 'e.png')):
        _face(str(inputs / name), k)
    calls = []
    predict = SRFERPredictor.predict

    def predict_then_crash(self, lr):
        calls.append(len(lr))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return predict(self, lr)

    monkeypatch.setattr(SRFERPredictor, 'predict', predict_then_crash)
    out = str(tmp_path / 'out')
    with pytest.raises(KeyboardInterrupt):
        infer.main(_argv(str(inputs), out, opt_path, batch_size=2))

    assert calls == [2, 2] and not os.path.exists(os.path.join(out, 'predictions.csv'))
    rows = _rows(os.path.join(out, 'predictions.csv.partial'))
    assert [os.path.basename(r['file']) for r in rows] == ['b.png', 'c.png']
    assert all(sum(float(r[f'prob_{c}']) for c in TINY_CLASSES) == pytest.approx(1, abs=1e-4) for r in rows)
    (skipped,) = _rows(os.path.join(out, 'skipped.csv.partial'))
    assert os.path.basename(skipped['file']) == 'a_corrupt.png'


def test_earlier_run_is_archived_not_overwritten(opt_path, tmp_path, capsys):
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    _face(str(inputs / 'a.png'))
    out = tmp_path / 'out'
    (out / 'sr').mkdir(parents=True)
    (out / 'predictions.csv').write_text('file\nearlier run\n', encoding='utf-8')
    (out / 'skipped.csv').write_text('file,reason\nx,y\n', encoding='utf-8')
    (out / 'sr' / 'a.png').write_bytes(b'earlier SR image')
    (out / 'mine.txt').write_text('not an output of srfer-infer', encoding='utf-8')

    assert infer.main(_argv(str(inputs), str(out), opt_path)) == 0
    (archive,) = glob.glob(str(out / 'archived_*'))
    assert 'moved the earlier outputs (predictions.csv, skipped.csv, sr/)' in capsys.readouterr().err
    assert open(os.path.join(archive, 'predictions.csv'), encoding='utf-8').read() == 'file\nearlier run\n'
    assert open(os.path.join(archive, 'sr', 'a.png'), 'rb').read() == b'earlier SR image'
    assert os.path.isfile(os.path.join(archive, 'skipped.csv'))
    assert [r['file'] for r in _rows(str(out / 'predictions.csv'))] == [str(inputs / 'a.png')]
    assert cv2.imread(str(out / 'sr' / 'a.png')).shape == (32, 32, 3)
    assert not (out / 'skipped.csv').exists() and (out / 'mine.txt').exists()

    assert infer.main(_argv(str(inputs), str(out), opt_path)) == 0  # again at once: a second archive
    assert len(glob.glob(str(out / 'archived_*' / 'predictions.csv'))) == 2
    assert infer.main(_argv(str(out / 'sr'), str(out), opt_path)) == 2  # inputs inside what would be archived
    assert 'choose another output folder' in capsys.readouterr().err
    assert (out / 'sr' / 'a.png').exists() and len(glob.glob(str(out / 'archived_*'))) == 2


def test_formula_like_names_are_inert(opt_path, tmp_path, monkeypatch):
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    names = ['+cmd.png', '-2+3.png', '=HYPERLINK("evil.example","x").png']
    for k, name in enumerate(names):
        _face(str(inputs / name), k)
    (inputs / '@SUM(A1).png').write_bytes(CORRUPT_PNG)
    monkeypatch.chdir(inputs)  # relative inputs: the file cells start with the name itself

    assert infer.main(_argv('*.png', str(tmp_path / 'out'), opt_path)) == 0
    rows = _rows(str(tmp_path / 'out' / 'predictions.csv'))
    assert [r['file'] for r in rows] == ["'" + name for name in names]
    assert [r['sr_file'] for r in rows] == [os.path.join('sr', name) for name in names]
    assert all(r['confidence'][0].isdigit() and r[f'prob_{TINY_CLASSES[0]}'][0].isdigit() for r in rows)
    (skipped,) = _rows(str(tmp_path / 'out' / 'skipped.csv'))
    assert skipped['file'] == "'@SUM(A1).png"


def test_second_process_on_the_same_output_folder_stops(opt_path, tmp_path, capsys):
    """Another process holds -o (its lock): srfer-infer exits 2 naming the folder and writes nothing."""
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    _face(str(inputs / 'a.png'))
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'predictions.csv').write_text('file\nearlier run\n', encoding='utf-8')
    holder_code = textwrap.dedent(
        """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location('run_lock', sys.argv[1])
        run_lock = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(run_lock)
        run_lock.acquire_folder(sys.argv[2], 'output folder')
        print('holding', flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, '-c', holder_code, run_lock.__file__, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == 'holding'
        assert infer.main(_argv(str(inputs), str(out), opt_path)) == 2
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    err = capsys.readouterr().err
    assert 'in use by a running process' in err and repr(str(out)) in err
    assert os.listdir(out) == ['predictions.csv']
    assert (out / 'predictions.csv').read_text(encoding='utf-8') == 'file\nearlier run\n'


class _StillRunning(BaseException):
    """Raised by :func:`_fails_after` (a BaseException: ``except Exception`` in the code under test lets it pass)."""


@contextmanager
def _fails_after(seconds: int):
    """Stop the block after ``seconds`` (a blocking open() is interrupted, not waited on forever)."""

    def on_alarm(signum, frame):
        raise _StillRunning(f'still running after {seconds} s')

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_glob_with_dotdot_after_a_wildcard_never_writes_over_its_input(opt_path, tmp_path, monkeypatch):
    """``in/a/*/../../../photos/*.png``: the path relative to the glob base is ``../../photos/p.png``; the SR image
    must stay inside ``OUT/sr`` (under the file's name) and the input must be left as it was."""
    (tmp_path / 'in' / 'a' / 'x').mkdir(parents=True)
    (tmp_path / 'photos').mkdir()
    photo = tmp_path / 'photos' / 'p.png'
    _face(str(photo), 7)
    original = photo.read_bytes()
    monkeypatch.chdir(tmp_path)

    assert infer.main(_argv('in/a/*/../../../photos/*.png', 'out', opt_path)) == 0
    assert photo.read_bytes() == original, 'the input image was overwritten by its SR image'
    assert os.listdir(tmp_path / 'photos') == ['p.png'] and os.listdir(tmp_path / 'in' / 'a') == ['x']
    (row,) = _rows(str(tmp_path / 'out' / 'predictions.csv'))
    assert row['sr_file'] == os.path.join('sr', 'p.png')
    assert cv2.imread(str(tmp_path / 'out' / 'sr' / 'p.png')).shape == (32, 32, 3)


def test_sr_names_stay_inside_the_sr_folder_and_are_unique():
    used: set[str] = set()
    names = [
        sr_output_name(rel, used)
        for rel in ('../../photos/p.png', 'p.jpg', 'a/./b/../c.png', '/abs/q.png', 'sub/../../r.png', 'a/c.png')
    ]
    assert names == ['p.png', 'p_1.png', 'a/c.png', 'q.png', 'r.png', 'a/c_1.png']


def test_sr_image_is_never_written_over_an_existing_file_or_outside_its_folder(tmp_path):
    """The last guard before a write: a target that exists (an input, hard-linked or not) or leaves the folder."""
    sr_folder = tmp_path / 'out' / 'sr'
    sr_folder.mkdir(parents=True)
    victim = tmp_path / 'photo.png'
    victim.write_bytes(b'input image')
    os.link(victim, sr_folder / 'linked.png')
    os.symlink(victim, sr_folder / 'symlinked.png')
    for rel in ('linked.png', 'symlinked.png', '../../photo.png'):
        with pytest.raises(OSError, match=r'not overwritten|outside'):
            write_new_file(str(sr_folder), rel, b'SR image', {str(victim.resolve())})
    assert victim.read_bytes() == b'input image'
    write_new_file(str(sr_folder), 'sub/new.png', b'SR image', {str(victim.resolve())})
    assert (sr_folder / 'sub' / 'new.png').read_bytes() == b'SR image'


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='no FIFOs on this system')
def test_fifo_among_the_inputs_is_skipped_not_waited_on(opt_path, tmp_path, capsys):
    """A FIFO named ``*.png`` (no writer) would block open() forever: it is skipped with a reason, like a bad image."""
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    _face(str(inputs / 'a.png'))
    os.mkfifo(inputs / 'pipe.png')
    out = str(tmp_path / 'out')

    with _fails_after(30):
        assert infer.main(_argv(str(inputs), out, opt_path)) == 0
        assert infer.main(_argv(str(inputs / '*.png'), out, opt_path)) == 0  # a glob match reports it too
        assert infer.main(_argv(str(inputs / 'pipe.png'), out, opt_path)) == 1  # and so does the FIFO given alone
    assert 'Processed 1 image(s)' in capsys.readouterr().out
    assert [os.path.basename(r['file']) for r in _rows(os.path.join(out, 'predictions.csv'))] == []
    for csv_path in [*glob.glob(os.path.join(out, 'archived_*', 'skipped.csv')), os.path.join(out, 'skipped.csv')]:
        (skipped,) = _rows(csv_path)
        assert skipped['file'] == str(inputs / 'pipe.png') and 'not a regular file (a FIFO' in skipped['reason']
    assert len(glob.glob(os.path.join(out, 'archived_*', 'skipped.csv'))) == 2
