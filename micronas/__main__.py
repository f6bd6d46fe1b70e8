from micronas.cli import main

if __name__ == "__main__":  # guarded: worker processes (spawn) re-import this module
    raise SystemExit(main())
