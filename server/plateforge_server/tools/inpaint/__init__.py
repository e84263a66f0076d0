"""The cleanup's plain self-supervised net ("inpaint" mode): how its training examples are made
(:mod:`.examples`: random holes cut in the plate where the shot's roto is clear). Its learned tool
is :data:`plateforge_server.tools.cleanup.learned.INPAINT`."""
