"""Our reference trainer (train_gpt.py, a submission in its own right); a package only so that the import contracts can check that it imports nothing from harness."""
