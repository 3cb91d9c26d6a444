"""Packaging glue that pyproject.toml cannot say on its own.

The knowledge base lives in ``rules/`` at the top of the repository (YAML a
clinician reviews first), but ships inside the wheel as ``calfrehab/rules``:
a top-level ``rules`` import name would collide in site-packages (PyPI's
django-rules installs ``rules``). ``packages.find`` cannot map a folder under
another name, so the package list is found here and the one mapping added.
An editable install reads ``rules/`` in place (``default_rules_dir``).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["calfrehab", "calfrehab.*"]), "calfrehab.rules"],
    package_dir={"calfrehab.rules": "rules"},
)
