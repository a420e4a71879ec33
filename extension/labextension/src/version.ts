/**
 * The extension's version, published on the page for the widget. It must equal the version
 * in package.json and in the Python package's pyproject.toml: scripts/build_labextension.py
 * refuses to build otherwise, and tests/unit/test_labextension_build.py checks it.
 */
export const VERSION = '0.1.0';
