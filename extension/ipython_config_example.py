# Load codex-notebook in every IPython kernel of this profile (instead of %load_ext):
# copy into ~/.ipython/profile_default/ipython_kernel_config.py
c = get_config()  # noqa: F821
c.InteractiveShellApp.extensions = ["codex_notebook"]
