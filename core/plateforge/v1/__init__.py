"""Generated protocol v1 stubs; regenerate with scripts/gen_proto.py, never edit."""
