"""One exception type for problems the user can fix (bad params, missing or corrupt files).

The CLI prints these as a single line and exits with status 2, never with a traceback.
"""


class UserError(Exception):
    """A problem in the user's input or environment, reported in one line."""
