"""Breaks the standard: no TaskFamily class."""


class Family:
    pass
