"""The plain self-supervised inpainting net ("inpaint" mode), whose models serve as cleanup
models: how its training examples are made (:mod:`.examples`: random holes cut in the plate where
the shot's roto is clear; :func:`.examples.random_holes` also gives the cleanup's generic hole
shapes) and its learned tool (:mod:`.learned`, :data:`.learned.INPAINT`)."""
