"""Run the ``kizuna`` command as ``python -m kizuna``."""

from kizuna.cli import main

if __name__ == "__main__":
    main()
