"""Each measured figure lives in one place: docs/results.md, whose tables are generated from the committed CSVs.

- docs/results.md equals what ``srfer results-page`` makes from the CSVs in docs/;
- no other page of README.md, CHANGELOG.md or docs/ repeats a two-decimal figure of docs/results.md, except the
  README's result table (a short copy checked here against its CSV) and the entries of :data:`ALLOWED`;
- no page names a file outside the repository, an issue number or a design sketch.
"""

from __future__ import annotations

import csv
import glob
import os
import re
import shutil

import pytest
from fer_fixtures import REPO_ROOT

from srfer_plugin.studies import results_page

DOCS = os.path.join(REPO_ROOT, 'docs')
RESULTS = os.path.join(DOCS, 'results.md')
README = os.path.join(REPO_ROOT, 'README.md')
# A figure: a number of at least 1 with exactly two decimals (86.90, -11.83, +10.00); not part of a version such as
# 0.10.x. Values below 1 (standard deviations, small differences, SSIM is four decimals anyway) are left out: they
# coincide with option values of other pages (a weight of 0.05, betas of 0.99) too often to say anything.
FIGURE = re.compile(r'(?<![\w.])[1-9]\d*\.\d{2}(?!\w|\.\w)')
# (page, figure): why that page may show a figure that docs/results.md also shows.
ALLOWED: dict[tuple[str, str], str] = {
    ('README.md', '29.20'): "the demo's bicubic PSNR (no CSV; written in the README only); the cpu-small RCAN x4 "
    'SR-FER cell of docs/results.md has the same value by chance',
}


def pages() -> list[str]:
    """Every Markdown page of the rule but the results page, relative to the repository."""
    found = ['README.md', 'CHANGELOG.md'] + sorted(
        os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(DOCS, '**', '*.md'), recursive=True)
    )
    return [p for p in found if os.path.isfile(os.path.join(REPO_ROOT, p)) and p != 'docs/results.md']


def read(path: str) -> str:
    with open(os.path.join(REPO_ROOT, path), encoding='utf-8') as f:
        return f.read()


def figures(text: str) -> set[str]:
    """The figures (:data:`FIGURE`) of a text, signs dropped."""
    return set(FIGURE.findall(text))


def repeats(results: str, others: dict[str, str], allowed: dict[tuple[str, str], str]) -> dict[str, list[str]]:
    """``{page: [figures]}``: the figures of ``results`` that another page shows without an allowance."""
    measured = figures(results)
    found = {}
    for page, text in others.items():
        extra = sorted(f for f in figures(text) & measured if (page, f) not in allowed)
        if extra:
            found[page] = extra
    return found


def readme_table() -> dict[str, list[str]]:
    """``{method: [acc, psnr, ssim]}`` of the README's result table (under "## The demo's result")."""
    section = read('README.md').split("## The demo's result", 1)[1].split('\n## ', 1)[0]
    rows = [line.strip().strip('|').split('|') for line in section.splitlines() if line.startswith('| ')]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[2:]}  # after the header and ---


def csv_copy() -> dict[str, list[str | None]]:
    """What the README table must show, from benchmark_classifiers_cpu_small.csv (None: a cell it has no CSV for)."""
    with open(os.path.join(DOCS, 'benchmark_classifiers_cpu_small.csv'), newline='', encoding='utf-8') as f:
        rows = {r['method']: r for r in csv.DictReader(f) if r['fer'] == 'resnet18slim_fer7_demo'}

    def fmt(row: dict[str, str], key: str, digits: int = 2) -> str:
        return f'{float(row[key]):.{digits}f}'

    plain, srfer = rows['plain'], rows['srfer']
    return {
        'hr': [fmt(plain, 'acc_hr'), '', ''],
        'bicubic': [fmt(plain, 'acc_bicubic'), None, None],
        'plain_sr': [fmt(plain, 'acc'), fmt(plain, 'psnr'), fmt(plain, 'ssim', 4)],
        'srfer': [fmt(srfer, 'acc'), fmt(srfer, 'psnr'), fmt(srfer, 'ssim', 4)],
    }


def readme_copy_figures() -> set[str]:
    """The README figures that :func:`test_readme_result_table_is_a_copy_of_its_csv` checks."""
    return {v for cells in csv_copy().values() for v in cells if v}


def other_pages() -> dict[str, str]:
    return {page: read(page) for page in pages()}


def test_results_page_equals_what_the_generator_makes_from_the_csvs():
    with open(RESULTS, encoding='utf-8') as f:
        text = f.read()
    assert set(results_page.BLOCK.findall(text)) and set(m[1] for m in results_page.BLOCK.findall(text)) == set(
        results_page.BLOCKS
    ), 'docs/results.md lacks a generated block'
    assert results_page.render(text) == text, 'docs/results.md is out of date: run `srfer results-page`'
    assert results_page.main(['--check']) == 0


def test_a_changed_csv_changes_the_page(tmp_path):
    for path in glob.glob(os.path.join(DOCS, '*.csv')) + [RESULTS]:
        shutil.copy(path, tmp_path)
    ablation = tmp_path / 'benchmark_ablation.csv'
    ablation.write_text(ablation.read_text().replace('66.9047622680664', '12.3456', 1))
    assert results_page.main(['--docs', str(tmp_path), '--check']) == 1
    assert results_page.main(['--docs', str(tmp_path)]) == 0
    assert results_page.main(['--docs', str(tmp_path), '--check']) == 0
    assert (tmp_path / 'results.md').read_text() != read('docs/results.md')


def test_an_unknown_block_is_an_error():
    with pytest.raises(ValueError, match='no-such'):
        results_page.render('<!-- generated: no-such -->\n<!-- end generated -->\n')


def test_no_other_page_repeats_a_figure_of_the_results_page():
    allowed = dict(ALLOWED)
    allowed.update(
        {('README.md', f): 'the README result table, checked against its CSV' for f in readme_copy_figures()}
    )
    found = repeats(read('docs/results.md'), other_pages(), allowed)
    assert not found, f'figures of docs/results.md repeated elsewhere (link to docs/results.md instead): {found}'


def test_every_allowance_is_still_needed():
    measured = figures(read('docs/results.md'))
    texts = other_pages()
    stale = [k for k in ALLOWED if k[1] not in measured or k[1] not in figures(texts.get(k[0], ''))]
    assert not stale, f'ALLOWED entries that no longer match a repeat: {stale}'


def test_the_rule_catches_a_repeat():
    results = '| both | 77.46 ± 2.08 | 30.71 |\n'
    others = {'docs/a.md': 'frozen SR-FER reaches 77.46 %.', 'docs/b.md': 'Python 3.11, mmengine 0.10.x, 77.4 %'}
    assert repeats(results, others, {}) == {'docs/a.md': ['77.46']}
    assert repeats(results, others, {('docs/a.md', '77.46'): 'why'}) == {}
    assert figures('-1.66 dB, +10.00, 0.66, 0.10.x, 1.10.2, v30.71b, 86.90.') == {'1.66', '10.00', '86.90'}


def test_readme_result_table_is_a_copy_of_its_csv():
    table = readme_table()
    expected = csv_copy()
    assert list(table) == list(expected)
    for method, cells in expected.items():
        for got, want in zip(table[method], cells):
            if want is not None:
                assert got == want, f'README result table, {method}: {table[method]} against the CSV {cells}'


OUTSIDE = re.compile(r'(?<![\w.])/(tmp|work|home|root|mnt|Users)/|[Dd]esign sketch|\bthe sketch\b|\bthe brief\b|'
                     r'development machine|(?<![\w&/])#\d+\b|\b[Ii]ssue \d+')  # fmt: skip


@pytest.mark.parametrize('page', ['README.md', 'CHANGELOG.md', 'docs/results.md', *pages()[2:]])
def test_pages_name_no_outside_file_issue_or_sketch(page):
    lines = [f'{i}: {line}' for i, line in enumerate(read(page).splitlines(), 1) if OUTSIDE.search(line)]
    assert not lines, f'{page} refers to something outside the repository:\n' + '\n'.join(lines)


def test_a_missing_page_is_named(tmp_path, capsys):
    assert results_page.main(['--docs', str(tmp_path), '--check']) == 2
    assert 'results.md' in capsys.readouterr().err
