"""README.md is nbs/index.ipynb written out (`python docs/build.py --readme`): nbdev-readme would do it through Quarto,
which not every machine has. Edit the notebook, then regenerate the README; this test fails while they differ."""
import importlib.util, re
from conftest import ROOT

_spec = importlib.util.spec_from_file_location('fastdit_docs_build', ROOT / 'docs' / 'build.py')
build = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(build)

def test_readme_is_the_index_notebook():
    want = build.readme_text(ROOT / 'nbs' / 'index.ipynb')
    got = (ROOT / 'README.md').read_text()
    assert got == want, ('README.md and nbs/index.ipynb differ: edit the notebook and run `python docs/build.py --readme` '
                         f'(first difference at character {next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))})')

def test_readme_has_the_two_commands_and_a_python_example():
    text = (ROOT / 'README.md').read_text()
    blocks = re.findall(r'```sh\n(.*?)\n```', text, re.S)
    setup, tests = blocks[0], blocks[1]
    assert 'pip install -e .' in setup and '[dev]' not in setup and setup.endswith('fastdit train --recipe quickstart')
    assert tests == 'pip install -e ".[dev]" && python docs/build.py --force && pytest -q'
    assert tests in (ROOT / '.ci' / 'run').read_text()                         # CI runs it verbatim
    assert re.search(r'```python\n.*Trainer\(', text, re.S)                   # the index notebook's first example
