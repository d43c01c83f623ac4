"""Errors a user can fix. The CLI prints their message on one line and exits with code 2."""


class UserInputError(ValueError):
    """Bad input: unknown format, impossible size or count, unreadable file, unusable output path."""
