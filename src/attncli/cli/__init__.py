"""The `attn` command line. Importing this package must not import torch, transformers or matplotlib."""
