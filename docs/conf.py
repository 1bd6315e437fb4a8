# Sphinx configuration of the documentation site; `python docs/build.py` copies it beside the staged notebooks.
# Sphinx + myst-nb render the notebooks nbdev has already run (see docs/build.py); nothing is executed here.
from importlib.metadata import version as _version

project = 'fastdit_lab'
author = 'fastdit_lab developers'
release = _version('fastdit_lab')
extensions = ['myst_nb']
exclude_patterns = ['_build', '**.ipynb_checkpoints']

nb_execution_mode = 'off'                      # the notebooks were run by docs/build.py, through nbdev's processors
nb_render_markdown_format = 'myst'             # show_doc's entries are Markdown outputs: headings, code, tables
nb_output_stderr = 'remove'                    # warnings and progress bars from running the notebooks
myst_enable_extensions = ['dollarmath', 'amsmath', 'attrs_inline']
myst_heading_anchors = 3
myst_update_mathjax = False                     # its MathJax 3 settings would replace MathJax 2's object
myst_all_links_external = True                  # links are to pages (methods.tread.html#treadplan), as nbdev writes them
suppress_warnings = ['misc.highlighting_failure', 'myst.header', 'docutils',   # show_doc's `---` rules in outputs
                    'mystnb.unknown_mime_type']     # HoloViews' own mime types beside the HTML and JavaScript shown

html_theme = 'sphinx_book_theme'
html_title = 'fastdit_lab'
html_static_path = ['_static']
html_theme_options = dict(show_toc_level=2, home_page_in_toc=True, use_download_button=False,
                          use_fullscreen_button=False, navigation_with_keys=False)
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False

# MathJax 2.7 from the jupyter-server-mathjax package, copied into _static/mathjax: no CDN. The package carries its one
# combined configuration and, of the fonts, the STIX-Web ones for the HTML-CSS output (as Jupyter configures it).
# The hidden MathML copy for screen readers is off: Chromium would draw it with TeX fonts the package leaves out.
mathjax_path = 'mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full'
mathjax2_config = {
    'HTML-CSS': {'availableFonts': [], 'preferredFont': None, 'webFont': 'STIX-Web', 'imageFont': None},
    'AssistiveMML': {'disabled': True}, 'menuSettings': {'assistiveMML': False},
    'showMathMenu': False, 'messageStyle': 'none'}
