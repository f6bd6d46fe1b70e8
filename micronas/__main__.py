from micronas.cli import run

if __name__ == "__main__":  # guarded: worker processes (spawn) re-import this module
    run()
