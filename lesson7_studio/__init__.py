"""Lesson7 Studio: image restoration the fast.ai lesson 7 way."""

__version__ = "0.1.0"
