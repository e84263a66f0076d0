"""Running nets on whole frames: tiling with feathered blends, batching, fp16 on GPU.

:mod:`plateforge_server.inference.tiling` cuts a frame of any size into overlapping tiles, runs
them through a net in batches and blends them back; tools and the trainer's previews call it.
"""
