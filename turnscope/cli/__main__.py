"""``python -m turnscope.cli``: the ``turnscope`` command without its console script."""

from turnscope.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
