"""`python -m attncli` runs the `attn` command."""

from attncli.cli.app import main

if __name__ == "__main__":
    main()
