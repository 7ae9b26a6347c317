"""The version of urlgrabber: its own module, so setup.py and grabber.py read it without importing the package."""

__version__ = "5.0.0"
