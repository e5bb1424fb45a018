"""``python -m graphrl ...`` runs the ``graphrl`` command (DDP workers relaunch it this way)."""

from graphrl.cli import main

if __name__ == "__main__":
    main()
