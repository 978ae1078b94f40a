"""Dataset writers never delete or overwrite what they did not write: the synthetic-face generator (and the demo and
benchmark that call it) in a folder holding a user's dataset, ``make-lr`` with a ``--dst`` overlapping ``--src``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from fer_fixtures import make_tiny_fer_dataset

from srfer_plugin import synthetic as sf
from srfer_plugin.data.fer_layout import read_meta_info
from srfer_plugin.studies import synthetic as study_synthetic
from srfer_plugin.synthetic import SyntheticRootError
from srfer_plugin.tools import generate_synthetic_faces, make_lr

TINY = ['--size', '16', '--num-train', '1', '--num-val', '0', '--num-test', '0']
SMALL = dict(seed=0, size=16, num_train=1, num_val=1, num_test=0)


def _tree(root: str | Path) -> dict[str, str]:
    """Every file and folder under ``root``: relative path -> content hash (``dir`` for folders)."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), root)] = 'dir'
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture
def user_dataset(tmp_path) -> str:
    """A user's dataset in the plugin layout, with the user's notes in ``train/``."""
    root = make_tiny_fer_dataset(str(tmp_path / 'real'), size=16, per_class={'train': 1, 'val': 1})
    Path(root, 'train', 'notes.txt').write_text('my notes', encoding='utf-8')
    return root


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


# --------------------------------------------------------------------------------- synthetic faces
def test_generate_refuses_a_user_dataset(user_dataset, capsys):
    before = _tree(user_dataset)
    assert generate_synthetic_faces.main(['--out', user_dataset, *TINY]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f'error: --out {user_dataset!r} holds ')
    assert 'train/notes.txt' in line and 'classes.txt' in line and 'choose another' in line
    assert _tree(user_dataset) == before
    assert generate_synthetic_faces.main(['--out', user_dataset, '--force', *TINY]) == 2  # --force too
    assert _tree(user_dataset) == before


@pytest.mark.parametrize('name', ['classes.txt', 'meta_info_test.txt', 'test/happy/mine.png', 'synthetic_faces.json'])
def test_any_foreign_file_where_it_writes_is_refused(tmp_path, name):
    root = tmp_path / 'data'
    (root / name).parent.mkdir(parents=True)
    (root / name).write_text('{"generator": "someone else"}', encoding='utf-8')
    (root / 'README.md').write_text('beside the splits: never in the way', encoding='utf-8')
    before = _tree(root)
    with pytest.raises(SyntheticRootError, match=name):
        sf.ensure_synthetic_dataset(str(root), **SMALL)
    assert _tree(root) == before


def test_a_folder_with_other_files_only_is_used(tmp_path):
    root = tmp_path / 'data'
    (root / 'train').mkdir(parents=True)  # an empty split folder holds nothing to lose
    (root / 'README.md').write_text('kept', encoding='utf-8')
    sf.ensure_synthetic_dataset(str(root), **SMALL)
    assert (root / 'README.md').read_text(encoding='utf-8') == 'kept'
    assert len(read_meta_info(str(root / 'meta_info_train.txt'))) == 7


def test_own_set_is_regenerated_with_other_settings_but_user_files_are_not(tmp_path, capsys):
    root = str(tmp_path / 'syn')
    assert generate_synthetic_faces.main(['--out', root, *TINY]) == 0
    assert generate_synthetic_faces.main(['--out', root, '--size', '16', '--num-train', '2', '--num-test', '1']) == 0
    assert len(read_meta_info(os.path.join(root, 'meta_info_train.txt'))) == 14
    assert generate_synthetic_faces.main(['--out', root, *TINY]) == 0  # smaller again: the extra faces go
    assert sorted(os.listdir(os.path.join(root, 'train', 'happy'))) == ['train_000001.png']
    capsys.readouterr()

    mine = Path(root, 'train', 'happy', 'mine.txt')
    mine.write_text('mine', encoding='utf-8')
    extra = Path(root, 'train', 'happy', 'train_000008.png')  # named like a face, but beyond the recorded count
    extra.write_bytes(b'not the generator')
    before = _tree(root)
    assert generate_synthetic_faces.main(['--out', root, '--size', '24', '--num-train', '1']) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert 'train/happy/mine.txt' in line and 'train/happy/train_000008.png' in line
    assert _tree(root) == before


def test_interrupted_generation_stays_the_generators(tmp_path, monkeypatch):
    root = str(tmp_path / 'syn')
    sf.write_synthetic_dataset(root, **SMALL)
    calls = {'n': 0}
    real_face = sf.dataset.generate_face

    def crash_after_three(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] > 3:
            raise KeyboardInterrupt
        return real_face(*args, **kwargs)

    monkeypatch.setattr(sf.dataset, 'generate_face', crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        sf.write_synthetic_dataset(root, **{**SMALL, 'num_train': 2})
    with open(os.path.join(root, sf.MANIFEST_NAME), encoding='utf-8') as f:
        assert json.load(f)['writing'] is True  # never taken for a complete set
    monkeypatch.undo()
    sf.ensure_synthetic_dataset(root, **{**SMALL, 'num_train': 2})  # its files are the generator's: replaced
    assert len(read_meta_info(os.path.join(root, 'meta_info_train.txt'))) == 14
    with open(os.path.join(root, sf.MANIFEST_NAME), encoding='utf-8') as f:
        assert 'writing' not in json.load(f)


def _no_training(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError('classifier training started')

    monkeypatch.setattr(study_synthetic, 'pretrain_fer', refuse)


def test_demo_refuses_a_user_dataset_before_training(user_dataset, tmp_path, monkeypatch, capsys):
    from srfer_plugin import demo

    _no_training(monkeypatch)
    before = _tree(user_dataset)
    argv = ['--quick', '--data-root', user_dataset, '--exp-root', str(tmp_path / 'exp'), '--out', str(tmp_path / 'o')]
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv)
    assert exit_info.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f'error: --data-root {user_dataset!r} holds ') and 'train/notes.txt' in line
    assert _tree(user_dataset) == before
    assert not (tmp_path / 'exp' / 'experiments').exists()


def test_benchmark_refuses_a_user_dataset_before_training(user_dataset, tmp_path, monkeypatch, capsys):
    from srfer_plugin.tools import benchmark

    _no_training(monkeypatch)
    before = _tree(user_dataset)
    argv = ['--data-root', user_dataset, '--exp-root', str(tmp_path / 'exp'), '--out', str(tmp_path / 'o')]
    assert benchmark.main(argv) == 2  # the default preset, cpu-small, generates the synthetic faces there
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f'error: --data-root {user_dataset!r} holds ') and 'train/notes.txt' in line
    assert _tree(user_dataset) == before
    assert not (tmp_path / 'exp' / 'experiments').exists()
    assert not (tmp_path / 'o').exists()  # nor an empty --out


# --------------------------------------------------------------------------------------- make-lr
def _make_lr_argv(src: str, dst: str, *extra: str) -> list[str]:
    return ['--src', src, '--meta', 'meta_info_val.txt', '--dst', dst, '--scale', '2', '--no-progress', *extra]


@pytest.mark.parametrize('where', ['same', 'inside', 'containing', 'link'])
def test_make_lr_refuses_dst_overlapping_src(user_dataset, tmp_path, capsys, where):
    dst = {
        'same': user_dataset,
        'inside': os.path.join(user_dataset, 'lr'),
        'containing': str(tmp_path),
        'link': str(tmp_path / 'link'),
    }[where]
    if where == 'link':
        os.symlink(user_dataset, dst)
    before = _tree(tmp_path)
    assert make_lr.main(_make_lr_argv(user_dataset, dst, '--overwrite')) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f'--dst {dst!r}' in line and f'--src {user_dataset!r}' in line and 'nothing was written' in line
    assert _tree(tmp_path) == before
    with pytest.raises(ValueError, match='--src'):
        make_lr.make_lr(user_dataset, dst, 2, meta=os.path.join(user_dataset, 'meta_info_val.txt'), progress=False)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(('flag', 'value'), [('--scale', '0'), ('--gt-size', '0'), ('--gt-size', '-8')])
def test_make_lr_refuses_sizes_below_one_by_flag(user_dataset, tmp_path, capsys, flag, value):
    argv = ['--src', user_dataset, '--dst', str(tmp_path / 'lr'), '--no-progress', flag, value]
    with pytest.raises(SystemExit) as exit_info:
        make_lr.main(argv)
    assert exit_info.value.code == 2
    assert f'argument {flag}: {value} is below 1' in capsys.readouterr().err
    assert not (tmp_path / 'lr').exists()


def test_make_lr_with_meta_already_in_dst(user_dataset, tmp_path, capsys):
    dst = tmp_path / 'lr'
    dst.mkdir()
    meta = dst / 'meta_info_val.txt'
    meta.write_bytes(Path(user_dataset, 'meta_info_val.txt').read_bytes())
    argv = ['--src', user_dataset, '--meta', str(meta), '--dst', str(dst), '--scale', '2', '--no-progress']
    assert make_lr.main([*argv, '--overwrite']) == 0, capsys.readouterr().err
    assert (dst / 'degradation.yml').is_file() and (dst / 'val' / 'happy').is_dir()
    assert meta.read_bytes() == Path(user_dataset, 'meta_info_val.txt').read_bytes()


def _make_lr_ok(argv: list[str], capsys) -> None:
    status = make_lr.main(argv)
    assert status == 0, capsys.readouterr().err


# (what the link in --dst is, the link's path in --dst, where it points: relative to --src or to tmp_path)
LINKS_OUT_OF_DST = [
    ('a class folder into --src', 'val/happy', ('src', 'val/happy')),
    ('an image into --src', 'val/sad/sad_000.png', ('src', 'val/sad/sad_000.png')),
    ('the split folder out of --dst', 'val', ('tmp', 'elsewhere')),
    ('classes.txt out of --dst', 'classes.txt', ('tmp', 'notes.txt')),
    ('degradation.yml out of --dst', 'degradation.yml', ('tmp', 'mine.yml')),
    ('the meta_info copy into --src', 'meta_info_val.txt', ('src', 'meta_info_val.txt')),
]


@pytest.mark.parametrize(('link', 'target'), [c[1:] for c in LINKS_OUT_OF_DST], ids=[c[0] for c in LINKS_OUT_OF_DST])
def test_make_lr_refuses_outputs_that_a_link_leads_out_of_dst(user_dataset, tmp_path, capsys, link, target):
    """A symbolic link inside --dst (``DST/happy -> ../SRC/happy``) would make the LR images replace the HR ones."""
    dst = tmp_path / 'lr'
    (dst / link).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'notes.txt').write_text('my notes', encoding='utf-8')
    (tmp_path / 'mine.yml').write_text('mine: true', encoding='utf-8')
    lists = tmp_path / 'lists'  # a --meta outside --src listing two of the four images
    lists.mkdir()
    (lists / 'meta_info_val.txt').write_text('val/happy/happy_000.png 1\nval/sad/sad_000.png 2\n', encoding='utf-8')
    base = user_dataset if target[0] == 'src' else str(tmp_path)
    os.symlink(os.path.join(base, target[1]), dst / link)
    before = _tree(tmp_path)
    argv = ['--src', user_dataset, '--meta', str(lists / 'meta_info_val.txt'), '--dst', str(dst), '--scale', '2']
    assert make_lr.main([*argv, '--no-progress', '--overwrite']) == 2
    line = _one_error_line(capsys.readouterr().err)
    real = os.path.realpath(os.path.join(base, target[1]))
    assert line.startswith(f'error: --dst {str(dst)!r}: the output ') and real in line, line
    assert ('lies inside --src' if target[0] == 'src' else 'leaves --dst') in line and 'nothing was written' in line
    assert _tree(tmp_path) == before


def test_make_lr_replaces_a_hard_link_instead_of_writing_through_it(user_dataset, tmp_path, capsys):
    dst = tmp_path / 'lr'
    hr = Path(user_dataset, 'val', 'happy', 'happy_000.png')
    (dst / 'val' / 'happy').mkdir(parents=True)
    os.link(hr, dst / 'val' / 'happy' / 'happy_000.png')  # the same file as the HR image
    hr_bytes = hr.read_bytes()
    _make_lr_ok(_make_lr_argv(user_dataset, str(dst), '--overwrite'), capsys)
    assert hr.read_bytes() == hr_bytes
    assert (dst / 'val' / 'happy' / 'happy_000.png').read_bytes() != hr_bytes  # the LR image, half the size
    assert not os.path.samefile(hr, dst / 'val' / 'happy' / 'happy_000.png')


def test_make_lr_refuses_to_mix_two_lr_sets(user_dataset, tmp_path, capsys):
    dst = str(tmp_path / 'lr')
    _make_lr_ok(_make_lr_argv(user_dataset, dst, '--scenario', 'blur'), capsys)
    two = tmp_path / 'two.txt'
    two.write_text('val/happy/happy_000.png 1\nval/sad/sad_000.png 2\n', encoding='utf-8')
    before = _tree(dst)
    argv = ['--src', user_dataset, '--meta', str(two), '--dst', dst, '--scale', '2', '--scenario', 'noise']
    assert make_lr.main([*argv, '--no-progress', '--overwrite']) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f'error: --dst {dst!r} holds 2 image file(s) this run would not write (')
    assert 'val/neutral/neutral_000.png' in line and 'val/surprise/surprise_000.png' in line
    assert 'Choose an empty --dst' in line and 'nothing was written' in line
    assert _tree(dst) == before

    # the same set again, made another way, replaces every image: allowed
    _make_lr_ok(_make_lr_argv(user_dataset, dst, '--scenario', 'noise', '--overwrite'), capsys)
    record = yaml.safe_load(Path(dst, 'degradation.yml').read_text(encoding='utf-8'))
    assert record['num_images'] == 4 and record['description'].endswith('noise(sigma=[1.0, 10.0])')
    assert all(_tree(dst)[rel] != before[rel] for rel in before if rel.endswith('.png'))


@pytest.mark.parametrize(('value', 'message'), [('-1', '-1 is below 0'), ('2.7', "'2.7' is not an integer")])
def test_make_lr_refuses_a_seed_that_is_not_a_whole_number_from_zero(user_dataset, tmp_path, capsys, value, message):
    with pytest.raises(SystemExit) as exit_info:
        make_lr.main(_make_lr_argv(user_dataset, str(tmp_path / 'lr'), '--seed', value))
    assert exit_info.value.code == 2
    assert f'argument --seed: {message}' in capsys.readouterr().err
    assert not (tmp_path / 'lr').exists()
