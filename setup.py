"""Install urlgrabber: ``pip install .`` (add ``[test]`` for the test suite)."""

import re

from setuptools import setup

with open("urlgrabber/_version.py", encoding="utf-8") as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

with open("README", encoding="utf-8") as f:
    LONG_DESCRIPTION = f.read()

setup(
    name="urlgrabber",
    version=VERSION,
    description="Grab files over HTTP(S), FTP and file://, one at a time or by the thousand, on one CurlMulti loop",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/plain",
    license="LGPL-2.1-or-later",
    packages=["urlgrabber"],
    package_data={"urlgrabber": ["py.typed"]},  # PEP 561: the package's type hints are for checkers
    python_requires=">=3.9",
    install_requires=["pycurl>=7.45"],
    extras_require={"test": ["pytest>=7", "pytest-timeout", "trustme", "pyftpdlib", "ruff", "hypothesis>=6",
                             "h2>=4"]},  # h2: test/h2server.py (HTTP/2 tests, bench/bench_h2.py)
    scripts=["scripts/urlgrabber"],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
        "Topic :: Internet :: WWW/HTTP",
        "Topic :: System :: Networking",
    ],
)
